"""Synthetic GGUF files: realistic sizes per quant, llama.cpp split naming, repo layout."""

from __future__ import annotations

import json
import re
import struct
from collections import Counter
from pathlib import Path

import pytest

from modelsync.gguf import GgufHeader, parse_header, read_header
from modelsync.gguf.header import QUANT_FILE_TYPES
from modelsync.testing.gguf_files import (
    SyntheticModel,
    write_gguf,
    write_imatrix,
    write_mmproj,
    write_split_gguf,
)
from tests.fixtures.models import GgufFactory

SHARD_NAME = re.compile(r"^(.+)-(\d{5})-of-(\d{5})\.gguf$")


def _header(path: Path) -> GgufHeader:
    header = read_header(path)
    assert header is not None, path
    return header


def _bits_per_weight(path: Path) -> float:
    header = _header(path)
    return 8 * (path.stat().st_size - header.header_size) / header.parameter_count


def test_file_sizes_follow_the_quant_order(gguf_factory: GgufFactory) -> None:
    """Bigger quants give bigger files, in llama.cpp's size order from F16 down to IQ1_S."""
    order = [
        "F16", "Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "IQ4_XS", "Q3_K_L",
        "Q3_K_M", "Q3_K_S", "IQ3_XXS", "Q2_K", "IQ2_XXS", "IQ1_S",
    ]  # fmt: skip
    sizes = [gguf_factory(f"m-{quant}.gguf", quant=quant).stat().st_size for quant in order]
    assert sizes == sorted(sizes, reverse=True)
    assert len(set(sizes)) == len(sizes)


@pytest.mark.parametrize(
    ("quant", "llama_cpp_bpw"),
    [
        ("Q8_0", 8.5008),
        ("Q6_K", 6.5633),
        ("Q5_K_M", 5.7036),
        ("Q4_K_M", 4.8944),
        ("Q3_K_M", 3.9960),
        ("Q2_K", 3.1593),
    ],
)
def test_bits_per_weight_are_close_to_llama_cpp(
    gguf_factory: GgufFactory, quant: str, llama_cpp_bpw: float
) -> None:
    """Whole-file bits per weight land within 0.25 of llama.cpp's figures for Llama-3.1-8B."""
    path = gguf_factory(f"m-{quant}.gguf", quant=quant)
    assert _bits_per_weight(path) == pytest.approx(llama_cpp_bpw, abs=0.25)


def test_default_files_stay_small(gguf_factory: GgufFactory) -> None:
    """With default options even the Q8_0 file is between 100 KB and 4 MB."""
    size = gguf_factory("m.gguf", quant="Q8_0").stat().st_size
    assert 100_000 < size < 4_000_000


def test_tensor_types_follow_the_q4_k_m_recipe(gguf_factory: GgufFactory) -> None:
    """Q4_K_M: Q4_K weights, Q6_K on half of attn_v/ffn_down and on output, F32 norms, ftype 15."""
    header = _header(gguf_factory("m.gguf", quant="Q4_K_M", n_layers=2))
    types = {tensor.name: tensor.type_name for tensor in header.tensors}
    assert header.file_type == QUANT_FILE_TYPES["Q4_K_M"] == 15
    assert types["output.weight"] == "Q6_K"
    assert types["token_embd.weight"] == "Q4_K"
    assert (types["blk.0.attn_v.weight"], types["blk.1.attn_v.weight"]) == ("Q4_K", "Q6_K")
    assert (types["blk.0.ffn_down.weight"], types["blk.1.ffn_down.weight"]) == ("Q4_K", "Q6_K")
    assert {types[name] for name in types if name.endswith("norm.weight")} == {"F32"}


def test_rows_off_the_block_fall_back_like_llama_cpp(gguf_factory: GgufFactory) -> None:
    """Rows of 640 (as in Gemma 3 270M) cannot hold K-quant blocks and fall back like llama.cpp."""
    header = _header(
        gguf_factory("m.gguf", quant="Q4_K_M", n_layers=1, n_embd=640, n_head=10, n_head_kv=1)
    )
    types = {tensor.name: tensor.type_name for tensor in header.tensors}
    assert types["blk.0.attn_q.weight"] == "Q5_0"
    assert types["blk.0.ffn_down.weight"] == "Q6_K"
    assert types["output.weight"] == "Q8_0"
    assert all(tensor.dims[0] % 32 == 0 for tensor in header.tensors if tensor.type_name == "Q5_0")


def test_same_options_give_identical_bytes(gguf_factory: GgufFactory) -> None:
    """Writing twice with the same options gives the same bytes; another name gives other bytes."""
    first = gguf_factory("a/m.gguf", name="same").read_bytes()
    second = gguf_factory("b/m.gguf", name="same").read_bytes()
    other = gguf_factory("c/m.gguf", name="other").read_bytes()
    assert first == second
    assert first != other
    assert len(first) == len(other)


def test_llama_metadata_is_written(gguf_factory: GgufFactory) -> None:
    """The file carries llama.cpp's llama keys, a tokenizer with bos/eos ids and a chat template."""
    header = _header(
        gguf_factory("m.gguf", n_layers=3, n_embd=512, n_head=8, n_head_kv=4, context_length=2048)
    )
    metadata = header.metadata
    assert (header.architecture, header.name) == ("llama", "tiny-llama")
    assert (header.block_count, header.embedding_length, header.context_length) == (3, 512, 2048)
    assert (header.head_count, header.head_count_kv) == (8, 4)
    assert metadata["llama.feed_forward_length"] == 512
    assert metadata["llama.rope.dimension_count"] == 64
    assert (metadata["tokenizer.ggml.bos_token_id"], metadata["tokenizer.ggml.eos_token_id"]) == (
        1,
        2,
    )
    assert "{{ bos_token }}" in str(metadata["tokenizer.chat_template"])
    assert metadata["general.quantization_version"] == 2


def test_extra_metadata_adds_replaces_and_removes(gguf_factory: GgufFactory) -> None:
    """extra_metadata adds keys with inferred types, replaces defaults, and None removes a key."""
    extra: dict[str, object] = {
        "general.name": "renamed",
        "custom.big": 2**40,
        "custom.ratio": 0.5,
        "custom.tags": ["a", "b"],
        "tokenizer.chat_template": None,
    }
    header = _header(gguf_factory("m.gguf", extra_metadata=extra))
    assert header.name == "renamed"
    assert header.metadata["custom.big"] == 2**40
    assert header.metadata["custom.ratio"] == 0.5
    tags = header.metadata["custom.tags"]
    assert getattr(tags, "values", None) == ("a", "b")
    assert "tokenizer.chat_template" not in header.metadata


def test_parameter_hint_sets_the_layer_count(gguf_factory: GgufFactory) -> None:
    """n_params_hint picks the layer count whose parameter total is nearest the hint."""
    header = _header(gguf_factory("m.gguf", n_params_hint=10_000_000))
    layers = {
        tensor.name.split(".")[1] for tensor in header.tensors if tensor.name.startswith("blk.")
    }
    assert header.block_count == len(layers) == SyntheticModel(n_params_hint=10_000_000).block_count
    assert header.parameter_count == pytest.approx(10_000_000, rel=0.1)


@pytest.mark.parametrize(
    "options",
    [{"quant": "Q4_K_X"}, {"n_head": 3}, {"n_head_kv": 3}, {"n_vocab": 2}],
    ids=["quant", "n_head", "n_head_kv", "n_vocab"],
)
def test_impossible_models_are_refused(options: dict[str, object]) -> None:
    """An unknown quant or inconsistent shape raises ValueError before anything is written."""
    with pytest.raises(ValueError, match=r"must|unknown quant"):
        SyntheticModel(**options)  # type: ignore[arg-type]


def test_split_model_uses_llama_cpp_naming_and_keys(tmp_path: Path) -> None:
    """Shards are `stem-QUANT-0000i-of-0000n.gguf`; shard 1 has all metadata, all have split.*."""
    shards = write_split_gguf(tmp_path, "Tiny", "Q8_0", 3)
    single = _header(write_gguf(tmp_path / "single.gguf", quant="Q8_0", name="Tiny"))
    assert [path.name for path in shards] == [f"Tiny-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert all(SHARD_NAME.match(path.name) for path in shards)
    headers = [_header(path) for path in shards]
    split_keys = {"split.no", "split.count", "split.tensors.count"}
    assert set(headers[0].metadata) == set(single.metadata) | split_keys
    for index, header in enumerate(headers):
        assert header.metadata["split.no"] == index
        assert header.metadata["split.count"] == 3
        assert header.metadata["split.tensors.count"] == len(single.tensors)
        assert index == 0 or set(header.metadata) == split_keys
    names = [tensor.name for header in headers for tensor in header.tensors]
    assert names == [tensor.name for tensor in single.tensors]
    assert sum(header.parameter_count for header in headers) == single.parameter_count
    assert Counter(len(header.tensors) for header in headers).total() == 3
    assert max(len(h.tensors) for h in headers) - min(len(h.tensors) for h in headers) <= 1


def test_split_shard_count_is_checked(tmp_path: Path) -> None:
    """More shards than tensors is refused."""
    with pytest.raises(ValueError, match="n_shards"):
        write_split_gguf(tmp_path, "Tiny", "Q8_0", 1000)


def test_mmproj_is_a_clip_projector(tmp_path: Path) -> None:
    """The vision projector is an F16 `clip` GGUF projecting to the text model's width."""
    header = _header(write_mmproj(tmp_path / "mmproj-Tiny-F16.gguf", text_n_embd=256))
    assert header.architecture == "clip"
    assert header.metadata["general.type"] == "mmproj"
    assert header.metadata["clip.vision.projection_dim"] == 256
    assert header.file_type == 1
    assert {tensor.type_name for tensor in header.tensors} == {"F16", "F32"}


def test_legacy_imatrix_has_llama_cpp_layout(tmp_path: Path) -> None:
    """imatrix.dat has one entry per 2-D block weight, then the dataset name, and no GGUF magic."""
    data = write_imatrix(tmp_path / "imatrix.dat", chunks=10, dataset="wiki.txt").read_bytes()
    (count,) = struct.unpack_from("<i", data)
    pos, names = 4, []
    for _ in range(count):
        (length,) = struct.unpack_from("<i", data, pos)
        name, ncall, nval = struct.unpack_from(f"<{length}sii", data, pos + 4)
        names.append(name.decode())
        assert ncall == 10
        pos += 4 + length + 8 + 4 * nval
    last_chunk, dataset_length = struct.unpack_from("<ii", data, pos)
    assert (last_chunk, data[pos + 8 :]) == (10, b"wiki.txt")
    assert dataset_length == len("wiki.txt")
    assert len(names) == 2 * 7
    assert "blk.1.ffn_down.weight" in names
    assert not data.startswith(b"GGUF")


def test_gguf_imatrix_has_no_architecture(tmp_path: Path) -> None:
    """An `.imatrix.gguf` is of type imatrix, with in_sum2/counts tensors and no architecture."""
    header = _header(write_imatrix(tmp_path / "m.imatrix.gguf"))
    assert header.architecture is None
    assert header.metadata["general.type"] == "imatrix"
    assert {tensor.name.rsplit(".", 1)[1] for tensor in header.tensors} == {"in_sum2", "counts"}


def test_repo_dir_has_the_typical_files(gguf_repo_dir: Path) -> None:
    """The repo fixture holds six quants, an F16 split, mmproj, imatrix, a card and a config."""
    names = sorted(path.name for path in gguf_repo_dir.iterdir())
    assert names == sorted(
        [
            *(
                f"Tiny-Llama-{q}.gguf"
                for q in ("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
            ),
            "Tiny-Llama-F16-00001-of-00002.gguf",
            "Tiny-Llama-F16-00002-of-00002.gguf",
            "mmproj-Tiny-Llama-F16.gguf",
            "imatrix.dat",
            "README.md",
            "config.json",
        ]
    )
    readme = (gguf_repo_dir / "README.md").read_text()
    front_matter = readme.split("---\n")[1]
    assert readme.startswith("---\n")
    assert "base_model: example/Tiny-Llama" in front_matter
    assert "- gguf" in front_matter
    config = json.loads((gguf_repo_dir / "config.json").read_text())
    q4 = _header(gguf_repo_dir / "Tiny-Llama-Q4_K_M.gguf")
    assert (config["num_hidden_layers"], config["hidden_size"]) == (
        q4.block_count,
        q4.embedding_length,
    )


def test_repo_ggufs_all_parse(gguf_repo_dir: Path) -> None:
    """Every model `.gguf` parses; its file_type matches its quant, except on later shards."""
    file_types = {}
    for path in sorted(gguf_repo_dir.glob("Tiny-Llama-*.gguf")):
        file_types[path.name] = parse_header(path.read_bytes()).file_type
    assert file_types == {
        **{
            f"Tiny-Llama-{q}.gguf": QUANT_FILE_TYPES[q]
            for q in ("Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
        },
        "Tiny-Llama-F16-00001-of-00002.gguf": QUANT_FILE_TYPES["F16"],
        "Tiny-Llama-F16-00002-of-00002.gguf": None,
    }
