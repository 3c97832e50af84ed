"""A co-user sharing the store can create its `tmp/` or `quarantine/` before they exist (both
are made on first use) as symlinks to another folder: gc, run by the store's owner or by root
from cron, must not remove that folder's old files through them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from modelsync.ops.gc import GcRequest, gc_store
from modelsync.store.layout import StoreLayout

DAY = 24 * 3600


@pytest.mark.parametrize("folder", ["tmp", "quarantine"])
def test_gc_removes_nothing_through_a_symlinked_store_folder(tmp_path: Path, folder: str) -> None:
    """With `<store>/<folder>` a symlink to the victim's folder, gc (a week and more later)
    leaves the victim's old files alone."""
    victim = tmp_path / "victim"
    victim.mkdir()
    old = victim / ".profile"
    old.write_text("keep\n")
    os.utime(old, (time.time() - 30 * DAY, time.time() - 30 * DAY))
    layout = StoreLayout(tmp_path / "store")
    layout.root.mkdir()
    (layout.root / folder).symlink_to(victim, target_is_directory=True)
    later = time.time() + 30 * DAY
    gc_store(GcRequest(store=layout.root, clock=lambda: later))
    assert old.read_text() == "keep\n"
