"""`--wait-timeout S` bounds every wait of a run, also the wait for another run's download of
a blob it needs (that blob's `.fetching` lock in the shared store): past S seconds it exits 6
naming the file and the fix, as the store lock's wait does. Before, it polled forever."""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.projects import TINY_WEIGHTS


def test_wait_timeout_bounds_the_wait_for_another_runs_download(
    run_cli: CliRunner, run_cli_process: CliRunner, tiny_project: dict[str, str]
) -> None:
    """With weights.bin's fetch lock held by another process and never released, `sync
    --wait-timeout 0.5` exits 6 naming the file, the timeout and the fix; config.json is
    placed, the weights are not."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    layout = StoreLayout(Path(os.environ["MODELSYNC_STORE"]))
    held = layout.fetch_lock_path(hashlib.sha256(TINY_WEIGHTS).hexdigest())
    held.parent.mkdir(parents=True)
    fd = os.open(held, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a run downloading the weights holds it
        # The subprocess timeout only ends the test if the wait ignores --wait-timeout.
        result = run_cli_process("--wait-timeout", "0.5", "sync", env=tiny_project, timeout=30)
    finally:
        os.close(fd)
    assert result.exit_code == 6, result.stderr
    [error] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "tiny/weights.bin" in error
    assert str(held) in error
    assert "0.5 s (--wait-timeout)" in error
    assert "a longer --wait-timeout" in result.stderr
    assert Path("models/tiny/config.json").read_text() == "{}"
    assert not Path("models/tiny/weights.bin").exists()
