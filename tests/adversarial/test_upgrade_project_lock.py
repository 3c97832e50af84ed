"""Two `lock`/`sync` runs of one project at once (real processes) serialize on the project
lock: the second waits naming the first, or exits 6 with `--no-wait` or after `--wait-timeout`;
a killed holder releases it, and the next run completes the work."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

from modelsync.ops.lock import LockRequest, lock_project
from modelsync.ops.sync import SyncRequest, sync_project
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive
from tests.fixtures.hub import HubRepoFactory
from tests.integration.test_sync_processes import Proc, manifest_for


def modelsync(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelsync", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_second_run_of_a_project_waits_or_exits_6_naming_the_first(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A `sync` holds the project lock (it is waiting for the store lock the test holds): a
    `lock --no-wait` exits 6 naming its pid, `--wait-timeout 0.2` exits 6 after waiting, a plain
    `lock --upgrade` waits and runs once the sync is killed; the next `sync` completes."""
    hub_repo("org/a", {"a.bin": b"a" * 4000})
    folder = manifest_for(tmp_path / "p", {"a": "org/a"}).parent
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "MODELSYNC_STORE": str(tmp_path / "store"),
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    asyncio.run(lock_project(LockRequest(manifest=folder / "models.toml", environ=env)))
    before = (folder / "models.lock").read_bytes()
    project = f"project {(folder / 'models.toml').resolve()}"
    with exclusive(StoreLayout(tmp_path / "store").lock_path, wait=False):
        first = Proc(["sync"], folder, env)
        first.wait_for("store.lock: held by pid")
        pid = first.popen.pid
        busy = modelsync(["--no-wait", "lock", "--upgrade"], folder, env)
        assert busy.returncode == 6, busy.stderr
        assert f"modelsync: error: {project}: held by pid {pid} (" in busy.stderr
        late = modelsync(["--wait-timeout", "0.2", "sync"], folder, env)
        assert late.returncode == 6, late.stderr
        assert f"{project}: still held by pid {pid} (" in late.stderr
        assert "after 0.2 s (--wait-timeout)" in late.stderr
        second = Proc(["lock", "--upgrade"], folder, env)
        second.wait_for(f"waiting for {project}: held by pid {pid}")
        first.popen.send_signal(signal.SIGKILL)
        assert first.finish() == -signal.SIGKILL
        assert second.finish() == 0, second.lines
    assert (folder / "models.lock").read_bytes() == before  # upstream did not move
    request = SyncRequest(manifest=folder / "models.toml", store=tmp_path / "store", environ=env)
    assert asyncio.run(sync_project(request)).applied is not None
    assert (folder / "models" / "a" / "a.bin").read_bytes() == b"a" * 4000
