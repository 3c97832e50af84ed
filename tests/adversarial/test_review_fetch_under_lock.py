"""A sync that holds the store lock never waits for another run's download: that run needs the
lock to admit its blob, so both would wait forever. The race: the blob was in the store when
the sync first looked (nothing to fetch ahead), then went (gc) while it queued for the lock,
and another run began downloading it."""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from filelock import FileLock, Timeout

from modelsync.store.layout import StoreLayout
from tests.adversarial.test_place_crash_journal import next_line
from tests.fixtures.cli import CliRunner
from tests.fixtures.projects import TINY_WEIGHTS


def test_a_sync_holding_the_store_lock_does_not_wait_for_a_download(
    run_cli: CliRunner, tiny_project: dict[str, str], tmp_path: Path
) -> None:
    """The sync fails that file (exit 6, naming it) and releases the store lock, so the run
    downloading the blob can admit it; the sync's other file is placed."""
    assert run_cli("sync", env=tiny_project).exit_code == 0
    shutil.rmtree("models")  # no placed copy to adopt the blob from
    project = tmp_path / "other"
    project.mkdir()
    shutil.copy("models.toml", project)
    shutil.copy("models.lock", project)
    layout = StoreLayout(Path(os.environ["MODELSYNC_STORE"]))
    sha = hashlib.sha256(TINY_WEIGHTS).hexdigest()
    store_lock = FileLock(layout.lock_path)
    store_lock.acquire()  # as gc holds it
    with subprocess.Popen(
        [sys.executable, "-m", "modelsync", "sync"],
        cwd=project,
        env={**os.environ, **tiny_project},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as sync:
        assert sync.stderr is not None
        fd = os.open(layout.fetch_lock_path(sha), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while "store.lock: held by" not in (line := next_line(sync.stderr, sync)):
                assert line, f"sync exited with {sync.poll()} before waiting for the lock"
            layout.blob_path(sha).unlink()  # gc removes the blob ...
            fcntl.flock(fd, fcntl.LOCK_EX)  # ... and another run starts downloading it
            store_lock.release()
            seen = []
            while (line := next_line(sync.stderr, sync)) and "waiting for tiny/" not in line:
                seen.append(line)  # until the sync waits for the download, or has exited
            try:  # that run's download is done: it takes the store lock to admit the blob
                FileLock(layout.lock_path).acquire(timeout=30)
                admitted = True
            except Timeout:
                admitted = False
        finally:
            os.close(fd)
            if sync.poll() is None:
                sync.kill()
        errors = "".join(seen) + sync.stderr.read()
    assert admitted, "deadlock: the sync held the store lock waiting for the download"
    assert sync.returncode == 6, errors
    assert "another run is downloading tiny/weights.bin" in errors
    assert (project / "models" / "tiny" / "config.json").read_text() == "{}"
