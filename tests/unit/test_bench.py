"""The pure parts of bench: settings, figures, the change against an older file, the table,
models.bench.json text, which files load, and how a child's end becomes a failure."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from modelsync.bench.model import BenchResult, Measured, Row, Runs, Settings, Stat, settings_for
from modelsync.bench.report import aggregate, change, stat, table
from modelsync.bench.results import parse_bench_file, render_bench_file
from modelsync.bench.runner import REBUILD_HINT, ChildFailedError, runs_from
from modelsync.errors import ExitCode, UsageError
from modelsync.lockfile.model import LockedFile, LockedModel
from modelsync.ops.bench import merge, weights_of

SETTINGS = Settings(n_prompt=512, n_gen=128, ctx=640, gpu_layers=0, repetitions=3)
FILE = Path("/m/gemma/g.gguf")


def _measured(pp: float = 450.0, tg: float = 60.0) -> Measured:
    return Measured(Stat(0.5, 0.01), Stat(pp, 3.0), Stat(tg, 1.0), 375_000_000, None)


def _result(model: str = "gemma", sha: str = "a" * 64, **changes: object) -> BenchResult:
    values: dict[str, object] = {
        "model": model,
        "profile": None,
        "file": "g-Q4_K_M.gguf",
        "sha256": sha,
        "quant": "Q4_K_M",
        "size": 253_113_024,
        "hardware": "sha256:" + "f" * 64,
        "llama_cpp": "0.3.36",
        "settings": SETTINGS,
        "measured": _measured(),
        **changes,
    }
    return BenchResult(**values)  # type: ignore[arg-type]


def _locked(name: str, files: dict[str, str]) -> LockedModel:
    return LockedModel(
        name=name,
        registry="hf",
        repo="org/repo",
        revision="main",
        commit="c" * 40,
        reason="test",
        inputs="sha256:" + "1" * 64,
        files=tuple(LockedFile(path=p, size=1, sha256=s) for p, s in files.items()),
    )


def test_settings_default_ctx_is_prompt_plus_generation() -> None:
    """Without --ctx the context is n_prompt + n_gen, as llama-bench sizes it."""
    got = settings_for(n_prompt=32, n_gen=8, ctx=None, gpu_layers=0, repetitions=2)
    assert got == Settings(32, 8, 40, 0, 2)
    assert (got.pp_test, got.tg_test) == ("pp32", "tg8")


@pytest.mark.parametrize(
    ("options", "text"),
    [
        ({"n_prompt": 0}, "--n-prompt 0: must be at least 1"),
        ({"repetitions": 0}, "--repetitions 0: must be at least 1"),
        ({"ctx": 100}, "--ctx 100: smaller than --n-prompt + --n-gen (640)"),
        ({"gpu_layers": -2}, "--gpu-layers -2: must be -1 (all) or a layer count"),
    ],
)
def test_bad_settings_name_the_flag(options: dict[str, int], text: str) -> None:
    """Impossible settings are exit 2 naming the flag and what it must be."""
    values: dict[str, int | None] = {
        "n_prompt": 512,
        "n_gen": 128,
        "ctx": None,
        "gpu_layers": 0,
        "repetitions": 3,
        **options,
    }
    with pytest.raises(UsageError) as caught:
        settings_for(**values)  # type: ignore[arg-type]
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.message == text


def test_aggregate_gives_tokens_per_second_mean_and_sample_std() -> None:
    """Each repetition's tokens over its seconds, then the mean and llama-bench's sample std."""
    runs = Runs(load_s=(0.5, 0.7), pp_s=(1.0, 0.5), tg_s=(2.0, 2.0), peak_rss=10, vram=None)
    got = aggregate(runs, Settings(100, 10, 110, 0, 2))
    assert got.pp_tps == Stat(150.0, pytest.approx(70.710678))  # type: ignore[arg-type]
    assert got.tg_tps == Stat(5.0, 0.0)
    assert got.load_s.mean == pytest.approx(0.6)
    assert stat([3.0]) == Stat(3.0, 0.0)


def test_change_compares_the_same_name_on_another_file_only() -> None:
    """A gain or regression in % against the same model name, hardware and settings when the
    file changed; nothing against the same file or other settings."""
    old = _result(sha="b" * 64, measured=_measured(pp=400.0, tg=80.0))
    new = _result()
    got = change(new, [old])
    assert got is not None
    assert (got.previous_sha256, got.pp_pct, got.tg_pct) == ("b" * 64, 12.5, -25.0)
    assert change(new, [_result()]) is None
    other = _result(sha="b" * 64, settings=Settings(32, 8, 40, 0, 2))
    assert change(new, [other]) is None


def test_table_has_llama_bench_columns_and_rows() -> None:
    """Two rows per model (pp512, tg128) with t/s ± std, load s, peak RSS and the change."""
    old = _result(sha="b" * 64, measured=_measured(pp=400.0))
    new = _result()
    lines = table([Row(new, reused=False, change=change(new, [old]))])
    assert [c.strip() for c in lines[0].strip("|").split("|")] == [
        "model", "quant", "size", "test", "t/s", "load s", "peak RSS", "vs previous", "result",
    ]  # fmt: skip
    pp = [c.strip() for c in lines[2].strip("|").split("|")]
    assert pp == [
        "gemma", "Q4_K_M", "241 MiB", "pp512", "450.00 ± 3.00", "0.50", "358 MiB",
        "+12.5 %", "measured",
    ]  # fmt: skip
    assert "tg128" in lines[3]
    assert "+0.0 %" in lines[3]


def test_bench_file_is_sorted_and_round_trips() -> None:
    """models.bench.json: version 1, results sorted by model, profile, file, hardware, version,
    settings, in the schema's key order; parsing gives the same values back."""
    results = [_result("zeta"), _result("alpha", llama_cpp="0.3.40"), _result("alpha")]
    text = render_bench_file(results)
    payload = json.loads(text)
    assert payload["version"] == 1
    assert [(r["model"], r["llama_cpp"]) for r in payload["results"]] == [
        ("alpha", "0.3.36"),
        ("alpha", "0.3.40"),
        ("zeta", "0.3.36"),
    ]
    assert list(payload["results"][0]) == [
        "model", "profile", "file", "sha256", "quant", "size", "hardware", "llama_cpp",
        "settings", "load_s", "pp_tps", "tg_tps", "peak_rss", "vram",
    ]  # fmt: skip
    assert payload["results"][0]["settings"] == {
        "n_prompt": 512, "n_gen": 128, "ctx": 640, "gpu_layers": 0, "repetitions": 3,
    }  # fmt: skip
    assert render_bench_file(reversed(results)) == text
    assert sorted(parse_bench_file(text, Path("b.json")), key=BenchResult.sort_key) == sorted(
        results, key=BenchResult.sort_key
    )


def test_bench_file_reader_ignores_unknown_keys_and_names_a_bad_file() -> None:
    """Unknown keys (a newer writer's) are ignored; a broken file is exit 2 naming it."""
    payload = json.loads(render_bench_file([_result()]))
    payload["extra"] = 1
    payload["results"][0]["note"] = "x"
    assert parse_bench_file(json.dumps(payload), Path("b.json")) == (_result(),)
    for text, found in (
        ("[1]", "expected a JSON object"),
        ("{", "not valid JSON"),
        ('{"version": 2, "results": []}', "version 2; this modelsync reads version 1"),
        ('{"version": 1, "results": [{"model": "x"}]}', "not a models.bench.json (KeyError"),
    ):
        with pytest.raises(UsageError) as caught:
            parse_bench_file(text, Path("/p/models.bench.json"))
        assert caught.value.message.startswith("/p/models.bench.json: ")
        assert found in caught.value.message


def test_weights_load_from_the_first_shard_and_skip_projectors() -> None:
    """A split model loads from shard 1; mmproj and non-GGUF files are not weights."""
    model = _locked(
        "m",
        {
            "m-Q8_0-00002-of-00002.gguf": "2" * 64,
            "m-Q8_0-00001-of-00002.gguf": "1" * 64,
            "mmproj-m-F16.gguf": "3" * 64,
            "README.md": "4" * 64,
        },
    )
    assert weights_of(model) == ("m-Q8_0-00001-of-00002.gguf", "m-Q8_0-00002-of-00002.gguf")
    assert weights_of(_locked("e", {"model.safetensors": "5" * 64})) == ()


def test_merge_keeps_results_for_files_still_locked() -> None:
    """Earlier results of other machines stay while their file is still locked; a result for a
    file the lock no longer pins, or the same slot measured again, is replaced."""
    locked = [_locked("gemma", {"g-Q4_K_M.gguf": "a" * 64})]
    elsewhere = _result(hardware="sha256:" + "e" * 64)
    stale = _result(sha="b" * 64, hardware="sha256:" + "d" * 64)
    gone = _result("removed")
    old_here = _result(measured=_measured(pp=1.0))
    fresh = _result()
    assert merge([elsewhere, stale, gone, old_here], [fresh], locked) == [elsewhere, fresh]


def test_child_signals_become_failures_with_the_way_out() -> None:
    """A crash names the signal with the rebuild hint; SIGKILL says memory; an error the child
    reported is quoted; an answer that is no measurement is named."""
    with pytest.raises(ChildFailedError) as caught:
        runs_from(-signal.SIGSEGV, b"", b"", FILE)
    assert caught.value.problem == f"{FILE}: the llama.cpp child crashed (SIGSEGV)"
    assert caught.value.hint == REBUILD_HINT
    assert "-DGGML_NATIVE=OFF" in REBUILD_HINT
    with pytest.raises(ChildFailedError) as caught:
        runs_from(-signal.SIGKILL, b"", b"", FILE)
    assert "killed (SIGKILL), most likely out of memory" in caught.value.problem
    error = json.dumps({"error": "ValueError: Failed to load model from file: g.gguf"})
    with pytest.raises(ChildFailedError) as caught:
        runs_from(1, error.encode() + b"\n", b"noise\n", FILE)
    assert caught.value.problem == (
        f"{FILE}: llama.cpp could not measure it: ValueError: Failed to load model from file: "
        "g.gguf"
    )
    with pytest.raises(ChildFailedError) as caught:
        runs_from(3, b"", b"first\nlast words\n", FILE)
    assert caught.value.problem.endswith("could not measure it: last words")
    with pytest.raises(ChildFailedError) as caught:
        runs_from(0, b'{"load_s": "x"}\n', b"", FILE)
    assert "not a measurement" in caught.value.problem


def test_child_answer_is_read_from_its_last_json_line() -> None:
    """The last JSON line of stdout is the measurement."""
    answer = {"load_s": [0.5], "pp_s": [1.0], "tg_s": [2.0], "peak_rss": 7, "vram": None}
    got = runs_from(0, b"log line\n" + json.dumps(answer).encode() + b"\n", b"", FILE)
    assert got == Runs((0.5,), (1.0,), (2.0,), 7, None)
