"""Review of `serve --root` while a file is being written into a repository folder (a model
being copied in): that repository waits for a later look, and neither the server's start nor
the pickup of the other folders fails because of it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelsync.server.repos import RepoStore

TOUCHER = "import os, sys\nwhile True:\n    os.utime(sys.argv[1])\n"
"""Changes the file's mtime and ctime as fast as it can, as a copy in progress does."""


@pytest.fixture
def busy_file(tmp_path: Path) -> Iterator[Path]:
    """`root/org/busy/model.gguf` (16 MiB), kept changing by a child process."""
    path = tmp_path / "root" / "org" / "busy" / "model.gguf"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\1" * (16 << 20))
    before = path.stat().st_mtime_ns
    child = subprocess.Popen([sys.executable, "-c", TOUCHER, str(path)])
    try:
        while path.stat().st_mtime_ns == before:  # the child has started touching it
            time.sleep(0.01)
        yield path
    finally:
        child.kill()
        child.wait()


def test_a_file_being_written_holds_back_only_its_repository(
    busy_file: Path, tmp_path: Path
) -> None:
    """The start's scan imports the other folders and a later look picks up a new folder,
    whatever the busy repository's file does meanwhile (it is imported once it settles)."""
    root = tmp_path / "root"
    (root / "org" / "calm").mkdir(parents=True)
    (root / "org" / "calm" / "config.json").write_text("{}\n")
    store = RepoStore(root)
    assert "org/calm" in store.rescan()
    (root / "org" / "new").mkdir()
    (root / "org" / "new" / "config.json").write_text("{}\n")
    assert "org/new" in store.refresh()
    assert {"org/calm", "org/new"} <= set(store.repo_ids())
