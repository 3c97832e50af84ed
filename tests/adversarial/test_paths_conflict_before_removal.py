"""Switching quants never leaves the model folder empty: a user's file where the new quant goes
stops sync before it changes anything, and a new quant that cannot be downloaded leaves the
previous one in place."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from modelsync.errors import RemoteError
from modelsync.net.retry import RetryPolicy
from modelsync.ops.lock import LockRequest, lock_project
from modelsync.ops.sync import SyncReport, SyncRequest, sync_project
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

Q8 = b"8" * 3000
Q4 = b"4" * 2000
FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)


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


@pytest.mark.usefixtures("cli_env")  # the test's own working dir
def test_failed_download_of_the_new_quant_keeps_the_old_one(
    env: dict[str, str], tmp_path: Path
) -> None:
    """Switching Q8_0 → Q4_K_M while the registry is unreachable exits 5 and keeps the placed
    Q8_0 file (and its record entry): the old quant goes only once the new one is in place."""
    want("Q8_0")
    store = tmp_path / "store"
    sync(store, env)
    old = Path("models/gemma/gemma-Q8_0.bin")
    want("Q4_K_M")
    asyncio.run(lock_project(LockRequest(manifest=Path("models.toml"), environ=env, retry=FAST)))
    unreachable = {**env, "HF_ENDPOINT": "http://127.0.0.1:9"}  # the discard port: refused
    with pytest.raises(RemoteError):
        sync(store, unreachable, frozen=True)
    assert old.read_bytes() == Q8
    assert not Path("models/gemma/gemma-Q4_K_M.bin").exists()
    report = sync(store, env)
    assert report.applied is not None
    assert report.applied.removed == ("gemma/gemma-Q8_0.bin",)
    assert Path("models/gemma/gemma-Q4_K_M.bin").read_bytes() == Q4
    assert not old.exists()


def sync(store: Path, env: dict[str, str], *, frozen: bool = False) -> SyncReport:
    request = SyncRequest(
        manifest=Path("models.toml"), store=store, environ=env, retry=FAST, frozen=frozen
    )
    return asyncio.run(sync_project(request))
