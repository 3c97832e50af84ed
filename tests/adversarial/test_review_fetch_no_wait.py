"""`sync --no-wait` never waits (design.md section 10): where another run is downloading a blob
it needs (holding that blob's `.fetching` lock in the shared store, maybe forever), it exits 6
naming the file instead of polling until that run ends; its other files are still placed."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.projects import TINY_WEIGHTS


def test_no_wait_exits_6_while_another_run_fetches_a_blob(
    run_cli: CliRunner, run_cli_process: CliRunner, tiny_project: dict[str, str]
) -> None:
    """With weights.bin's fetch lock held by another process, `sync --no-wait` exits 6 naming
    it, places config.json, and the weights are not placed."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    layout = StoreLayout(Path(os.environ["MODELSYNC_STORE"]))
    held = layout.fetch_lock_path(hashlib.sha256(TINY_WEIGHTS).hexdigest())
    held.parent.mkdir(parents=True)
    fd = os.open(held, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a run downloading the weights holds it
        result = run_cli_process("sync", "--no-wait", env=tiny_project, timeout=30)
    finally:
        os.close(fd)
    assert result.exit_code == 6, result.stderr
    assert "tiny/weights.bin" in result.stderr
    assert "another run is downloading" in result.stderr
    assert Path("models/tiny/config.json").read_text() == "{}"
    assert not Path("models/tiny/weights.bin").exists()
