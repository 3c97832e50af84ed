"""`modelsync bench` on the real Gemma 3 270M Q4_K_M file, synced from the local hub: plausible
figures, and a second run that reuses them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from modelsync.hardware.detect import detect
from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory
from tests.fixtures.models import GEMMA_SHA256, GEMMA_SIZE, GemmaFile

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None,
        reason="llama-cpp-python is not installed (the bench extra: MODELSYNC_WITH_BENCH=1)",
    ),
]
SMALL = ("--n-prompt", "32", "--n-gen", "8", "--repetitions", "2", "--ctx", "256")


def test_gemma_sync_then_bench_then_reuse(
    run_cli: CliRunner,
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    gemma_gguf: GemmaFile,
    tmp_path: Path,
) -> None:
    """sync places Gemma from the hub; bench measures it (tokens/s above 0, the child's peak RSS
    above the file's size, llama-bench's test names); a second bench reuses the result."""
    hub_repo("google/gemma-3-270m-GGUF", {"gemma-3-270m-Q4_K_M.gguf": gemma_gguf.path})
    Path("models.toml").write_text('[models.gemma]\nsource = "hf://google/gemma-3-270m-GGUF"\n')
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    assert run_cli("sync", env=env).exit_code == 0
    first = run_cli("bench", *SMALL, env=env)
    assert first.exit_code == 0, first.stderr
    assert [line.split("|")[4].strip() for line in first.stdout.splitlines()[2:4]] == [
        "pp32",
        "tg8",
    ]
    (entry,) = json.loads(Path("models.bench.json").read_text())["results"]
    assert (entry["model"], entry["file"], entry["quant"]) == (
        "gemma",
        "gemma-3-270m-Q4_K_M.gguf",
        "Q4_K_M",
    )
    assert (entry["sha256"], entry["size"]) == (GEMMA_SHA256, GEMMA_SIZE)
    all_layers = -1 if detect().gpus else 0  # the default: every layer where there is a GPU
    assert entry["settings"] == {
        "n_prompt": 32, "n_gen": 8, "ctx": 256, "gpu_layers": all_layers, "repetitions": 2,
    }  # fmt: skip
    assert entry["pp_tps"]["mean"] > 0
    assert entry["tg_tps"]["mean"] > 0
    assert entry["load_s"]["mean"] > 0
    assert entry["peak_rss"] > GEMMA_SIZE

    second = run_cli("bench", *SMALL, "--json", env=env)
    assert second.exit_code == 0, second.stderr
    (row,) = second.json_lines()[-1]["results"]
    assert row["reused"] is True
    assert (row["pp_tps"], row["tg_tps"]) == (entry["pp_tps"], entry["tg_tps"])
