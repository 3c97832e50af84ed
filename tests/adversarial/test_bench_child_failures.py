"""Attacks on `modelsync bench`: a corrupt GGUF, a child killed by a signal (a native crash, the
OOM killer), a child that never ends, a broken models.bench.json and a tampered stored result.
Each fails that model only, with one line naming it and the fix; the others are measured."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import write_gguf
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python is not installed (the bench extra: MODELSYNC_WITH_BENCH=1)",
)
psutil: Any = importlib.import_module("psutil")  # a runtime dependency without type stubs
SMALL = ("--n-prompt", "16", "--n-gen", "4", "--repetitions", "2", "--gpu-layers", "0")


@pytest.fixture
def env(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, cli_env: dict[str, str]
) -> dict[str, str]:
    """Two synthetic models on the hub, `good` and `other`, in models.toml; the hub as `hf`."""
    assert cli_env  # the working directory and store are the test's own
    hub_repo("org/good-GGUF", {"good-Q8_0.gguf": write_gguf(tmp_path / "g.gguf", quant="Q8_0")})
    other = write_gguf(tmp_path / "o.gguf", quant="Q8_0", name="other")
    hub_repo("org/other-GGUF", {"other-Q8_0.gguf": other})
    Path("models.toml").write_text(
        '[models.good]\nsource = "hf://org/good-GGUF"\n'
        '[models.other]\nsource = "hf://org/other-GGUF"\n'
    )
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def _error(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("modelsync: error:"))


def _benched() -> list[str]:
    results = json.loads(Path("models.bench.json").read_text())["results"]
    return [r["model"] for r in results]


def test_corrupt_gguf_fails_cleanly_and_the_others_are_measured(
    run_cli: CliRunner, env: dict[str, str], hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A GGUF whose tensor data is cut short (header intact, so lock and sync accept it) fails in
    the child; the report names the model and file, exit 2, and the good model is measured."""
    whole = write_gguf(tmp_path / "c.gguf", quant="Q8_0", name="corrupt").read_bytes()
    hub_repo("org/corrupt-GGUF", {"corrupt-Q8_0.gguf": whole[: len(whole) * 2 // 3]})
    with Path("models.toml").open("a") as manifest:
        manifest.write('[models.corrupt]\nsource = "hf://org/corrupt-GGUF"\n')
    assert run_cli("sync", env=env).exit_code == 0
    result = run_cli("bench", *SMALL, env=env)
    assert result.exit_code == 2
    placed = Path.cwd() / "models" / "corrupt" / "corrupt-Q8_0.gguf"
    error = _error(result.stderr)
    assert error.startswith(
        f"modelsync: error: models.corrupt: {placed}: llama.cpp could not measure it: "
    )
    assert error.endswith(
        "; check that the file is a complete GGUF model llama.cpp supports "
        "(`modelsync verify --full`, or upgrade llama-cpp-python)"
    )
    assert "  failed corrupt: models.corrupt: " in result.stdout
    assert _benched() == ["good", "other"]


def _runner_children(parent: Any) -> list[Any]:
    found = []
    for child in parent.children():
        try:
            if "modelsync.bench.runner" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


def test_child_killed_by_a_signal_fails_that_model_only(
    env: dict[str, str], cli_env: dict[str, str], tmp_path: Path, run_cli: CliRunner
) -> None:
    """The first model's child dies of SIGSEGV (as a native crash does): reported with the
    rebuild hint; the second's is SIGKILLed (as the OOM killer does): reported as memory; the
    command goes on to the end and exits 2."""
    assert run_cli("sync", env=env).exit_code == 0
    endless = ("--n-prompt", "16", "--n-gen", "4", "--repetitions", "1000000")
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelsync", "bench", *endless],
        env={**os.environ, **cli_env, **env},
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    parent = psutil.Process(proc.pid)
    killed: set[int] = set()
    try:
        for sig in (signal.SIGSEGV, signal.SIGKILL):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                alive = [c for c in _runner_children(parent) if c.pid not in killed]
                if alive:
                    alive[0].send_signal(sig)
                    killed.add(alive[0].pid)
                    break
                time.sleep(0.01)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, stderr
    good = Path.cwd() / "models" / "good" / "good-Q8_0.gguf"
    other = Path.cwd() / "models" / "other" / "other-Q8_0.gguf"
    assert _error(stderr) == (
        f"modelsync: error: models.good: {good}: the llama.cpp child crashed (SIGSEGV) (and 1 "
        "more models failed); a llama.cpp built for this CPU's native instructions crashes on "
        'CPUs with AMX: rebuild it with CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install '
        "--force-reinstall --no-cache-dir llama-cpp-python (or MODELSYNC_WITH_BENCH=1 "
        "scripts/install)"
    )
    assert (
        f"  failed other: models.other: {other}: the llama.cpp child was killed (SIGKILL), most "
        "likely out of memory; free memory, or pass smaller --ctx or --gpu-layers"
    ) in stdout.splitlines()


def test_child_that_never_ends_is_stopped_at_the_timeout(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """A measurement past --timeout is stopped and reported with the fix, exit 2."""
    assert run_cli("sync", "--model", "good", env=env).exit_code == 0
    result = run_cli(
        "bench", "--model", "good", "--repetitions", "1000000", "--timeout", "1", env=env
    )
    assert result.exit_code == 2
    good = Path.cwd() / "models" / "good" / "good-Q8_0.gguf"
    assert _error(result.stderr) == (
        f"modelsync: error: models.good: {good}: the measurement did not finish within 1 s "
        "(stopped); pass a larger --timeout, or smaller --n-prompt/--n-gen/--repetitions"
    )


def test_broken_bench_file_stops_before_measuring_and_is_kept(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """A models.bench.json that is not one is exit 2 naming it; it is not overwritten."""
    assert run_cli("sync", env=env).exit_code == 0
    Path("models.bench.json").write_text('{"version": 1, "results": [{"model": 1}]}')
    result = run_cli("bench", *SMALL, env=env)
    assert result.exit_code == 2
    assert _error(result.stderr).startswith(
        f"modelsync: error: {Path.cwd() / 'models.bench.json'}: not a models.bench.json (KeyError"
    )
    assert Path("models.bench.json").read_text() == '{"version": 1, "results": [{"model": 1}]}'
    assert not (Path(env["HF_HUB_CACHE"]).parent / "store" / "bench").exists()


def test_tampered_stored_result_is_measured_again(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """A result file under the store whose key was edited (or that is not JSON) is not trusted:
    the model is measured again and the file rewritten."""
    assert run_cli("sync", "--model", "good", env=env).exit_code == 0
    assert run_cli("bench", "--model", "good", *SMALL, env=env).exit_code == 0
    (stored,) = (tmp_path / "store" / "bench").glob("*/*.json")
    entry = json.loads(stored.read_text())
    entry["key"]["llama_cpp"] = "0.0.1"
    entry["pp_tps"]["mean"] = 1e9
    stored.write_text(json.dumps(entry))
    again = run_cli("bench", "--model", "good", *SMALL, "--json", env=env)
    assert again.exit_code == 0, again.stderr
    (row,) = again.json_lines()[-1]["results"]
    assert row["reused"] is False
    assert row["pp_tps"]["mean"] < 1e9
    stored.write_text("{")
    third = run_cli("bench", "--model", "good", *SMALL, "--json", env=env)
    assert third.json_lines()[-1]["results"][0]["reused"] is False
    assert json.loads(stored.read_text())["key"]["llama_cpp"] != "0.0.1"
