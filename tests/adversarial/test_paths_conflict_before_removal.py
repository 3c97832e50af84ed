"""A user's file where the new lock wants to place one: sync refuses before it changes anything,
so the previous quant's file stays and the model folder is never left empty."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

Q8 = b"8" * 3000
Q4 = b"4" * 2000


@pytest.fixture
def env(hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path) -> dict[str, str]:
    """org/gemma with two quants on the local hub; caches that hold nothing to adopt."""
    hub_repo("org/gemma", {"gemma-Q8_0.bin": Q8, "gemma-Q4_K_M.bin": Q4})
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def want(quant: str) -> None:
    Path("models.toml").write_text(
        f'[models.gemma]\nsource = "hf://org/gemma"\ninclude = ["gemma-{quant}.bin"]\n'
    )


def test_users_file_at_the_new_quants_path_keeps_the_old_quant(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """Switching Q8_0 → Q4_K_M while the user's own file sits at the Q4_K_M path exits 3 naming
    it, and leaves the placed Q8_0 file, the user's file and the store as they were."""
    want("Q8_0")
    assert run_cli("sync", env=env).exit_code == 0
    old = Path("models/gemma/gemma-Q8_0.bin")
    assert old.read_bytes() == Q8
    mine = Path("models/gemma/gemma-Q4_K_M.bin")
    mine.write_bytes(b"the user's own conversion")
    want("Q4_K_M")
    blobs = StoreLayout(Path(os.environ["MODELSYNC_STORE"])).blobs_dir
    before = sorted(p.name for p in blobs.rglob("*") if p.is_file())
    result = run_cli("sync", env=env)
    assert result.exit_code == 3
    assert f"{mine.absolute()} (not placed by modelsync" in result.stderr
    assert old.read_bytes() == Q8
    assert mine.read_bytes() == b"the user's own conversion"
    assert sorted(p.name for p in blobs.rglob("*") if p.is_file()) == before
    status = run_cli("status", env=env)
    assert status.exit_code == 3
    assert "  remove  gemma/gemma-Q8_0.bin (no longer in the lock)" in status.stdout
