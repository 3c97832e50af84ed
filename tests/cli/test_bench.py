"""`modelsync bench` on synthetic llama-shaped GGUFs synced from the local hub: measured once,
reused after, measured again only where a file changed; split models; what it refuses."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import write_gguf, write_split_gguf
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

needs_llama = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (the bench extra: MODELSYNC_WITH_BENCH=1)",
)
SMALL = ("--n-prompt", "16", "--n-gen", "4", "--repetitions", "2", "--gpu-layers", "0")


@pytest.fixture
def env(hub: ServerHandle, tmp_path: Path, cli_env: dict[str, str]) -> dict[str, str]:
    """The hub as the implicit `hf` registry; caches that hold nothing to adopt."""
    assert cli_env  # the working directory and store are the test's own
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def _project(models: dict[str, str]) -> None:
    """models.toml with `name = repo` sources."""
    Path("models.toml").write_text(
        "".join(f'[models.{name}]\nsource = "hf://{repo}"\n' for name, repo in models.items())
    )


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _bench_file() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(Path("models.bench.json").read_text())
    return loaded


def test_bench_without_llama_cpp_exits_2_with_the_install_command(
    run_cli: CliRunner, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the optional extra, bench says how to install it (portable build) and exits 2."""
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # what an absent package looks like
    _project({"tiny": "org/tiny-GGUF"})
    result = run_cli("bench", env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        "modelsync: error: `modelsync bench` needs llama-cpp-python, which is not installed; "
        'install the bench extra: CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install '
        "'modelsync[bench]' (in a checkout: MODELSYNC_WITH_BENCH=1 scripts/install)\n"
    )
    assert not Path("models.bench.json").exists()


@needs_llama
def test_bench_before_sync_exits_3(
    run_cli: CliRunner, env: dict[str, str], hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A locked model whose file is not placed here is reported with the fix, exit 3 (drift, as
    `status` says it), and nothing is measured."""
    hub_repo("org/tiny-GGUF", {"tiny-Q8_0.gguf": write_gguf(tmp_path / "t.gguf", quant="Q8_0")})
    _project({"tiny": "org/tiny-GGUF"})
    assert run_cli("lock", env=env).exit_code == 0
    result = run_cli("bench", *SMALL, env=env)
    assert result.exit_code == 3
    assert result.stderr.splitlines()[-1] == (
        "modelsync: error: models.tiny: tiny/tiny-Q8_0.gguf is not synced on this machine; "
        "run `modelsync sync` first"
    )
    assert not Path("models.bench.json").exists()


@needs_llama
def test_bench_measures_once_then_reuses_until_forced(
    run_cli: CliRunner, env: dict[str, str], hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """The first bench measures (llama-bench table, models.bench.json per the schema, a result
    under the store); the second reuses it and says so without rewriting the file; --force
    measures again."""
    model = write_gguf(tmp_path / "t.gguf", quant="Q8_0")
    hub_repo("org/tiny-GGUF", {"tiny-Q8_0.gguf": model, "README.md": "# tiny"})
    _project({"tiny": "org/tiny-GGUF"})
    assert run_cli("sync", env=env).exit_code == 0
    first = run_cli("bench", *SMALL, env=env)
    assert first.exit_code == 0, first.stderr
    lines = first.stdout.splitlines()
    assert _cells(lines[0])[:4] == ["model", "quant", "size", "test"]
    pp, tg = _cells(lines[2]), _cells(lines[3])
    assert pp[:4] == ["tiny", "Q8_0", pp[2], "pp16"]
    assert tg[3] == "tg4"
    assert pp[-1] == tg[-1] == "measured"
    assert lines[4] == (
        f"benched 1 models: 1 measured, 0 reused; results in {Path.cwd() / 'models.bench.json'}"
    )
    written = Path("models.bench.json").read_bytes()
    (entry,) = json.loads(written)["results"]
    assert entry["model"] == "tiny"
    assert entry["file"] == "tiny-Q8_0.gguf"
    assert entry["size"] == model.stat().st_size
    assert entry["settings"] == {
        "n_prompt": 16, "n_gen": 4, "ctx": 20, "gpu_layers": 0, "repetitions": 2,
    }  # fmt: skip
    assert entry["pp_tps"]["mean"] > 0
    assert entry["tg_tps"]["mean"] > 0
    assert entry["load_s"]["mean"] > 0
    assert entry["peak_rss"] > model.stat().st_size
    stored = list((tmp_path / "store" / "bench" / entry["sha256"]).glob("*.json"))
    assert len(stored) == 1

    second = run_cli("bench", *SMALL, env=env)
    assert second.exit_code == 0, second.stderr
    assert _cells(second.stdout.splitlines()[2])[-1] == "reused"
    assert (
        "1 models: 0 measured, 1 reused (same files, machine, llama-cpp-python and settings; "
        "--force measures again)" in second.stdout
    )
    assert Path("models.bench.json").read_bytes() == written

    forced = run_cli("bench", *SMALL, "--force", "--json", env=env)
    assert forced.exit_code == 0, forced.stderr
    report = forced.json_lines()[-1]
    assert (report["event"], report["ok"]) == ("report", True)
    assert [(r["model"], r["reused"]) for r in report["results"]] == [("tiny", False)]


@needs_llama
def test_upgrade_measures_only_the_changed_model(
    run_cli: CliRunner, env: dict[str, str], hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """After an upgrade changes one model's file, only that model is measured again, and its row
    compares with the previous file's result; the other model is reused."""
    hub_repo("org/a-GGUF", {"a-Q8_0.gguf": write_gguf(tmp_path / "a.gguf", quant="Q8_0")})
    hub_repo("org/b-GGUF", {"b-Q8_0.gguf": write_gguf(tmp_path / "b.gguf", quant="Q8_0", name="b")})
    _project({"a": "org/a-GGUF", "b": "org/b-GGUF"})
    assert run_cli("sync", env=env).exit_code == 0
    assert run_cli("bench", *SMALL, env=env).exit_code == 0
    before = {r["model"]: r["sha256"] for r in _bench_file()["results"]}
    changed = write_gguf(tmp_path / "a2.gguf", quant="Q8_0", name="a2")
    hub_repo("org/a-GGUF", {"a-Q8_0.gguf": changed})
    assert run_cli("lock", "--upgrade", env=env).exit_code == 0
    assert run_cli("sync", env=env).exit_code == 0
    result = run_cli("bench", *SMALL, "--json", env=env)
    assert result.exit_code == 0, result.stderr
    rows = {r["model"]: r for r in result.json_lines()[-1]["results"]}
    assert (rows["a"]["reused"], rows["b"]["reused"]) == (False, True)
    assert rows["a"]["change"]["previous_sha256"] == before["a"]
    assert rows["b"]["change"] is None
    after = {r["model"]: r["sha256"] for r in _bench_file()["results"]}
    assert after["b"] == before["b"]
    assert after["a"] != before["a"]


@needs_llama
def test_split_model_loads_from_its_first_shard(
    run_cli: CliRunner, env: dict[str, str], hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A model in two shards is measured from shard 1 (llama.cpp reads shard 2 beside it); its
    size counts both; a model with no GGUF is skipped, and naming it is exit 2."""
    (tmp_path / "split").mkdir()
    shards = write_split_gguf(tmp_path / "split", "big", quant="Q8_0", n_shards=2)
    hub_repo("org/big-GGUF", {p.name: p for p in shards})
    hub_repo("org/cfg", {"config.json": "{}"})
    Path("models.toml").write_text(
        '[models.big]\nsource = "hf://org/big-GGUF"\n'
        '[models.cfg]\nsource = "hf://org/cfg"\ninclude = ["*.json"]\n'
    )
    assert run_cli("sync", env=env).exit_code == 0
    result = run_cli("bench", *SMALL, env=env)
    assert result.exit_code == 0, result.stderr
    assert "  skipped cfg: no GGUF file" in result.stdout.splitlines()
    (entry,) = _bench_file()["results"]
    assert entry["file"] == "big-Q8_0-00001-of-00002.gguf"
    assert entry["size"] == sum(p.stat().st_size for p in shards)
    refused = run_cli("bench", "--model", "cfg", env=env)
    assert refused.exit_code == 2
    assert "--model cfg: no GGUF file in models.lock to load" in refused.stderr
