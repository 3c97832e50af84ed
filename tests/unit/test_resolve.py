"""The resolver: GGUF names, memory estimates, budgets, and choosing by tier and quality."""

from __future__ import annotations

import pytest

from modelsync.errors import ExitCode, NoVariantFitsError, UsageError
from modelsync.hardware.model import declared
from modelsync.resolve.explain import explain_lines
from modelsync.resolve.gguf import catalog, label_of_path, parse_label, pinned_file, skip_reason
from modelsync.resolve.memory import budgets, context_for, estimate, fit, kv_cache_bytes
from modelsync.resolve.model import GIB, MIB, ModelShape, RepoFile, Want
from modelsync.resolve.quants import rank
from modelsync.resolve.select import select

GEMMA_270M = ModelShape(
    architecture="gemma3",
    n_layers=18,
    n_embd=640,
    n_head=4,
    n_head_kv=1,
    key_length=256,
    value_length=256,
    context_length=32768,
    n_vocab=262144,
    sliding_window=512,
)
# Llama-3.1-8B-like: 32 layers, 8 KV heads of 128 → 128 KiB of f16 KV cache per token.
LLAMA_8B = ModelShape(
    architecture="llama",
    n_layers=32,
    n_embd=4096,
    n_head=32,
    n_head_kv=8,
    context_length=131072,
    n_vocab=128256,
    header_size=8 << 20,
    parameter_count=8_030_000_000,
)
# Sizes of Llama-3.1-8B quantizations (bytes, as published).
SIZES = {
    "Q2_K": 3_179_131_904,
    "Q3_K_M": 4_018_918_400,
    "Q4_K_M": 4_920_734_720,
    "Q5_K_M": 5_732_987_904,
    "Q6_K": 6_596_006_912,
    "Q8_0": 8_540_770_304,
}
GPU8 = declared("gpu8", ram=32 * GIB, vram=8 * GIB)
LAPTOP = declared("laptop", ram=16 * GIB, vram=None)
TINY = declared("tiny", ram=4 * GIB, vram=None)


def repo_files(prefix: str = "Llama-3.1-8B-Instruct") -> list[RepoFile]:
    files = [RepoFile(f"{prefix}-{label}.gguf", size) for label, size in SIZES.items()]
    files += [
        RepoFile("mmproj-F16.gguf", 600 << 20),
        RepoFile("imatrix.dat", 5 << 20),
        RepoFile("README.md", 2000),
        RepoFile(".gitattributes", 1500),
    ]
    return files


def want(**fields: object) -> Want:
    return Want(subject="models.llama", source="hf:org/repo@abc1234", **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("Codestral-22B-v0.1-F32-Q2_K.gguf", "Q2_K"),
        ("Qwen3-4B-UD-Q2_K_XL.gguf", "UD-Q2_K_XL"),
        ("Codestral-22B-v0.1.gguf", None),
        ("gemma-3-270m-q4_k_m.gguf", "Q4_K_M"),
        ("llama-2-7b.Q4_K_M.gguf", "Q4_K_M"),
        ("Model.i1-IQ3_XXS.gguf", "i1-IQ3_XXS"),
        ("model-IQ2_XXS.gguf", "IQ2_XXS"),
        ("model-IQ2_XS.gguf", "IQ2_XS"),
        ("model-BF16.gguf", "BF16"),
        ("model-Q4_K_L.gguf", "Q4_K_L"),
        ("gpt-oss-20b-MXFP4_MOE.gguf", "MXFP4_MOE"),
        ("model-Q4_0_4_4.gguf", "Q4_0_4_4"),
    ],
)
def test_quant_labels_from_names(name: str, label: str | None) -> None:
    """Labels follow llama.cpp and huggingface.js: last match, prefixes kept, longest first."""
    assert parse_label(name) == label


def test_folder_names_are_labels_and_shards_use_their_prefix() -> None:
    """A folder names the quant when the file does not; shard suffixes are not labels."""
    assert label_of_path("UD-Q4_K_XL/Kimi-00001-of-00003.gguf") == "UD-Q4_K_XL"
    assert label_of_path("Q8_0/model-Q8_0-00002-of-00002.gguf") == "Q8_0"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("mmproj-model-F16.gguf", "vision projector (mmproj)"),
        ("model.imatrix.gguf", "importance matrix"),
        ("mtp-model-Q8_0.gguf", "draft model"),
        ("model-Q4_0_4_8.gguf", "Q4_0_4_8 is an ARM repack llama.cpp no longer loads"),
        ("model.gguf.part1of2", "not a GGUF file"),
        ("model-Q4_K_M.gguf", None),
    ],
)
def test_files_that_are_not_candidates(path: str, reason: str | None) -> None:
    """mmproj, imatrix, drafters, ARM repacks and byte-split parts are set aside."""
    assert skip_reason(path) == reason


def test_catalog_groups_complete_shards_and_orders_by_quality() -> None:
    """Shards form one candidate when complete; incomplete groups are skipped with a reason."""
    files = [
        RepoFile("m-Q4_K_M.gguf", 40),
        RepoFile("m-F16-00001-of-00002.gguf", 80),
        RepoFile("m-F16-00002-of-00002.gguf", 80),
        RepoFile("m-Q8_0-00001-of-00003.gguf", 30),
        RepoFile("m-Q8_0-00003-of-00003.gguf", 30),
        RepoFile("mmproj-m-F16.gguf", 10),
    ]
    found = catalog(files)
    assert found.labels() == ["F16", "Q4_K_M"]
    assert [f.path for f in found.variants[0].files] == [
        "m-F16-00001-of-00002.gguf",
        "m-F16-00002-of-00002.gguf",
    ]
    assert found.variants[0].size == 160
    reasons = {s.path: s.reason for s in found.skipped}
    assert reasons["m-Q8_0-00001-of-00003.gguf"].startswith("incomplete split")
    assert reasons["mmproj-m-F16.gguf"] == "vision projector (mmproj)"


def test_pinned_shard_pulls_its_group() -> None:
    """Pinning shard 1 of a split model takes every shard."""
    files = [RepoFile(f"m-Q8_0-0000{i}-of-00002.gguf", 5) for i in (1, 2)]
    variant = pinned_file(files, "m-Q8_0-00001-of-00002.gguf")
    assert variant is not None
    assert [f.path for f in variant.files] == [f.path for f in files]
    assert pinned_file(files, "missing.gguf") is None


def test_ranks_follow_the_preference_order() -> None:
    """Quality ranks: F16 > Q8_0 > Q6_K > Q4_K_M > IQ4_XS > Q3_K_M > Q2_K; UD above its base."""
    order = ["F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "IQ4_XS", "Q3_K_M", "Q2_K", "IQ1_S"]
    ranks = [rank(label) or 0.0 for label in order]
    assert ranks == sorted(ranks, reverse=True)
    assert len(set(ranks)) == len(ranks)
    assert rank("UD-Q4_K_XL") == rank("Q4_K_L")
    assert rank("UD-Q4_K_M") == (rank("Q4_K_M") or 0) + 0.5
    assert rank("i1-Q4_K_M") == rank("Q4_K_M")


@pytest.mark.parametrize(("context", "mib"), [(4096, 27), (32768, 111), (131072, 399)])
def test_kv_cache_matches_llama_cpp_on_gemma_270m(context: int, mib: int) -> None:
    """The KV formula reproduces llama.cpp's measured Gemma 3 270M cache (with sliding window)."""
    assert round(kv_cache_bytes(GEMMA_270M, context) / MIB) == mib


def test_kv_cache_per_token_of_an_8b_model() -> None:
    """GQA counts KV heads: Llama-3.1-8B holds 128 KiB per token, 4 GiB at 32k."""
    assert kv_cache_bytes(LLAMA_8B, 32768) == 4 * GIB
    per_layer = ModelShape(
        architecture="x", n_layers=2, n_embd=64, n_head=4, n_head_kv=(0, 2), n_vocab=10
    )
    assert kv_cache_bytes(per_layer, 256) == 256 * 2 * (16 + 16) * 2


def test_context_defaults_to_8192_and_is_capped_by_training() -> None:
    """The planned context is the manifest's, else 8192, never above the trained length."""
    assert context_for(LLAMA_8B, None) == 8192
    assert context_for(LLAMA_8B, 1 << 20) == 131072
    assert context_for(None, 2048) == 2048


def test_budgets_of_discrete_unified_and_cpu_machines() -> None:
    """GPU budget = VRAM − runtime overhead − max(1 GiB, 5 %); unified uses Metal's share."""
    h100 = budgets(declared("h100", ram=128 * GIB, vram=81559 * MIB))
    assert h100.gpu == 81559 * MIB - 600 * MIB - 81559 * MIB // 20
    assert h100.ram == 125 * GIB
    mac = budgets(declared("mac", ram=64 * 10**9, vram=None, unified=True))
    assert mac.gpu == 64 * 10**9 * 3 // 4 - 512 * MIB
    assert mac.resource == "unified memory"
    assert budgets(LAPTOP).gpu == 0
    assert budgets(TINY).ram == 3 * GIB


def test_fit_tiers() -> None:
    """A variant runs fully on GPU, partially offloaded, on CPU, or nowhere."""
    q4 = estimate(LLAMA_8B, SIZES["Q4_K_M"], 8192)
    q8 = estimate(LLAMA_8B, SIZES["Q8_0"], 8192)
    assert fit(LLAMA_8B, q4, GPU8).tier == "full"
    partial = fit(LLAMA_8B, q8, GPU8)
    assert partial.tier == "partial"
    assert 16 <= partial.gpu_layers < 32
    assert fit(LLAMA_8B, q8, LAPTOP).tier == "cpu"
    assert fit(LLAMA_8B, q8, TINY).tier == "none"


def test_best_prefers_full_gpu_over_better_quality_partial() -> None:
    """On an 8 GiB GPU the full-GPU Q4_K_M beats a partially offloaded Q6_K or Q8_0."""
    choice = select(want(), repo_files(), LLAMA_8B, GPU8)
    assert choice.quant == "Q4_K_M"
    assert choice.fit is not None
    assert choice.fit.tier == "full"
    assert choice.reason.startswith("Q4_K_M: the best quality that fits (full GPU, est. 5.")
    assert choice.reason.endswith("; Q5_K_M only partial offload 30/32 layers")
    assert [f.path for f in choice.files] == ["Llama-3.1-8B-Instruct-Q4_K_M.gguf"]


def test_best_on_a_cpu_machine_takes_the_best_that_fits_in_ram() -> None:
    """Without a GPU the best quality that fits in RAM wins."""
    choice = select(want(), repo_files(), LLAMA_8B, LAPTOP)
    assert choice.quant == "Q8_0"
    assert choice.context == 8192
    assert choice.memory is not None
    assert choice.memory > SIZES["Q8_0"]


def test_quality_floor_excludes_two_bit_unless_named() -> None:
    """Q2_K never wins by default, even when nothing else fits; naming it takes it."""
    small = declared("small", ram=6 * GIB, vram=None)
    with pytest.raises(NoVariantFitsError) as caught:
        select(want(), repo_files(), LLAMA_8B, small)
    assert caught.value.exit_code == ExitCode.USAGE
    assert 'set quality-floor = "Q2_K"' in caught.value.one_line()
    assert (
        select(want(mode="named", labels=("Q2_K",)), repo_files(), LLAMA_8B, small).quant == "Q2_K"
    )
    assert select(want(floor="Q2_K"), repo_files(), LLAMA_8B, small).quant == "Q2_K"


def test_nothing_fits_names_the_smallest_need_and_the_profile() -> None:
    """When nothing fits, the error gives the smallest candidate's need versus the profile."""
    with pytest.raises(NoVariantFitsError) as caught:
        select(want(), repo_files(), LLAMA_8B, TINY)
    line = caught.value.one_line()
    assert line.startswith(
        "models.llama: nothing in hf:org/repo@abc1234 fits profile tiny (4.0 GiB RAM): "
        "the smallest, Q3_K_M, needs est."
    )
    assert "usable: 3.0 GiB RAM" in line


def test_named_quant_missing_lists_what_exists() -> None:
    """A named quantization that is not there fails with the list of candidates."""
    with pytest.raises(UsageError) as caught:
        select(want(mode="named", labels=("IQ4_XS",)), repo_files(), LLAMA_8B, GPU8)
    assert caught.value.one_line() == (
        'models.llama: quantization "IQ4_XS" is not in hf:org/repo@abc1234; it has: '
        'Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q2_K; set quant to one of these, or to "best"'
    )


def test_named_quant_is_honoured_even_if_it_does_not_fit() -> None:
    """A named quantization is taken as asked; the misfit is reported, not hidden."""
    choice = select(want(mode="named", labels=("Q8_0",)), repo_files(), LLAMA_8B, TINY)
    assert choice.quant == "Q8_0"
    assert "does not fit" in choice.reason
    assert choice.notes


def test_ordered_list_takes_the_first_that_exists_and_fits() -> None:
    """An ordered list skips names that are absent or too big, and says so."""
    choice = select(
        want(mode="ordered", labels=("IQ4_XS", "Q8_0", "Q4_K_M")),
        repo_files(),
        LLAMA_8B,
        declared("mid", ram=9 * GIB, vram=None),
    )
    assert choice.quant == "Q4_K_M"
    assert "IQ4_XS not in the repo" in choice.reason
    assert "Q8_0 does not fit" in choice.reason


def test_ambiguous_label_asks_to_pin_a_file() -> None:
    """Two different files with the named label are ambiguous: pin one."""
    files = [RepoFile("a-Q4_K_M.gguf", 10), RepoFile("b-Q4_K_M.gguf", 10)]
    with pytest.raises(UsageError, match='2 "Q4_K_M" candidates'):
        select(want(mode="named", labels=("Q4_K_M",)), files, None, LAPTOP)


def test_imatrix_wins_a_tie_at_low_bits() -> None:
    """At equal label and size, the imatrix (i1-) file beats the static one at ≤ 4 bits."""
    files = [RepoFile("m.Q4_K_M.gguf", 100), RepoFile("m.i1-Q4_K_M.gguf", 100)]
    assert select(want(), files, None, LAPTOP).quant == "i1-Q4_K_M"


def test_globs_select_files_of_a_non_gguf_repo() -> None:
    """include/exclude globs choose the files; .gitattributes never comes along."""
    files = [
        RepoFile("model.safetensors", 100),
        RepoFile("config.json", 1),
        RepoFile("onnx/model.onnx", 50),
        RepoFile(".gitattributes", 1),
    ]
    choice = select(want(mode="globs", include=("*.safetensors", "*.json")), files, None, LAPTOP)
    assert [f.path for f in choice.files] == ["config.json", "model.safetensors"]
    everything = select(want(), files, None, LAPTOP)
    assert [f.path for f in everything.files] == [
        "config.json",
        "model.safetensors",
        "onnx/model.onnx",
    ]
    with pytest.raises(UsageError, match="matched no file"):
        select(want(mode="globs", include=("*.bin",)), files, None, LAPTOP)


def test_pinned_file_missing_lists_files() -> None:
    """A pinned path that is not in the repo fails naming what is there."""
    with pytest.raises(UsageError, match=r'"x\.gguf" is not a file of'):
        select(want(mode="file", file="x.gguf"), repo_files(), LLAMA_8B, LAPTOP)


def test_explain_table_marks_the_choice() -> None:
    """The explain table lists every candidate with estimate, fit and verdict; the choice marked."""
    choice = select(want(), repo_files(), LLAMA_8B, GPU8)
    lines = explain_lines("llama", "hf:org/repo@abc1234", GPU8, choice)
    assert lines[0].startswith("llama (hf:org/repo@abc1234) on profile gpu8: 8.0 GiB VRAM")
    assert "candidate" in lines[1]
    assert "est. memory" in lines[1]
    chosen = [line for line in lines if line.lstrip().startswith("→")]
    assert len(chosen) == 1
    assert choice.quant is not None
    assert choice.quant in chosen[0]
    assert any("below floor" in line for line in lines)
    assert lines[-1].startswith("  reason: ")
