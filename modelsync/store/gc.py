"""Garbage collection: blobs no registered lock references, and stale temp files.

Plan, then apply. The plan reads every registered lock (`locks.d/`): a blob any of them lists
is kept; a registration whose lock file is gone is dropped. Temp files are removed only when
older than a grace period, and a partial download is never removed while a live process holds
its lock (`partial.is_in_use`), whatever its age. The caller holds the store lock to apply.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from modelsync.digest import is_sha256
from modelsync.errors import LockfileError, UsageError
from modelsync.lockfile.io import read_lock
from modelsync.store import roots
from modelsync.store.layout import (
    FETCH_LOCK_SUFFIX,
    PARTIAL_SUFFIX,
    PLACE_TEMP_SUFFIX,
    StoreLayout,
)
from modelsync.store.partial import is_in_use
from modelsync.store.state import StateCache

GRACE_S = 24 * 3600
"""Temp files younger than this are left alone (a partial download may still be resumed)."""


@dataclass(frozen=True, slots=True)
class GcItem:
    """A file gc removes: its size, the bytes removing it frees (0 while other links to the
    same inode remain, e.g. a hardlinked target), and why."""

    path: Path
    size: int
    frees: int
    why: str


@dataclass(frozen=True, slots=True)
class GcPlan:
    """What gc would remove; falsy when there is nothing to do."""

    blobs: tuple[GcItem, ...] = ()
    temps: tuple[GcItem, ...] = ()
    dead_roots: tuple[roots.Root, ...] = ()
    kept_blobs: int = 0
    in_use: int = 0
    """Partial downloads skipped because a live process is writing them."""
    locks: int = 0
    """Registered locks that still exist."""

    def __bool__(self) -> bool:
        return bool(self.blobs or self.temps or self.dead_roots)

    @property
    def bytes_to_free(self) -> int:
        """Disk bytes freed by applying the plan."""
        return sum(i.frees for i in (*self.blobs, *self.temps))


def _referenced(layout: StoreLayout) -> tuple[set[str], list[roots.Root], int]:
    """Digests listed by the registered locks, the registrations whose lock is gone, live ones."""
    keep: set[str] = set()
    dead: list[roots.Root] = []
    live = 0
    for root in roots.registered(layout):
        if root.lock == root.entry:
            raise UsageError(
                f"{root.entry}: unreadable lock registration; gc cannot tell which blobs it keeps",
                hint="delete that file and run `modelsync sync` in each project using this store",
            )
        try:
            lock = read_lock(root.lock)
        except LockfileError as err:
            raise UsageError(
                f"gc cannot tell which blobs {root.lock} needs: {err.message}",
                hint=f"fix or regenerate that lock (`modelsync lock`), or delete {root.entry} "
                "to stop keeping its blobs",
            ) from err
        if lock is None:
            dead.append(root)
            continue
        live += 1
        keep.update(f.sha256 for m in lock.models for f in m.files)
    return keep, dead, live


def _item(path: Path, st: os.stat_result, why: str) -> GcItem:
    frees = st.st_blocks * 512 if st.st_nlink <= 1 else 0
    return GcItem(path, st.st_size, frees, why)


def _blob_items(layout: StoreLayout, keep: set[str]) -> tuple[list[GcItem], int]:
    remove: list[GcItem] = []
    kept = 0
    try:
        shards = sorted(os.scandir(layout.blobs_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return [], 0
    for shard in shards:
        if not shard.is_dir(follow_symlinks=False):
            continue
        for entry in sorted(os.scandir(shard.path), key=lambda e: e.name):
            if not is_sha256(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            if entry.name in keep:
                kept += 1
                continue
            remove.append(
                _item(Path(entry.path), entry.stat(follow_symlinks=False), "unreferenced")
            )
    return remove, kept


def _old(st: os.stat_result, now: float, grace_s: float) -> bool:
    return now - st.st_mtime > grace_s


def _temp_items(layout: StoreLayout, now: float, grace_s: float) -> tuple[list[GcItem], int]:
    remove: list[GcItem] = []
    in_use = 0
    try:
        entries = sorted(os.scandir(layout.tmp_dir), key=lambda e: e.name)
    except FileNotFoundError:
        return [], 0
    for entry in entries:
        if not entry.is_file(follow_symlinks=False):
            continue
        path = Path(entry.path)
        st = entry.stat(follow_symlinks=False)
        if entry.name.endswith(PARTIAL_SUFFIX) and is_in_use(path):
            in_use += 1
            continue
        if entry.name.endswith(FETCH_LOCK_SUFFIX) and is_in_use(path):
            continue  # a download in progress; its partial is counted above
        if not _old(st, now, grace_s):
            continue
        if entry.name.endswith(PARTIAL_SUFFIX + ".json") and is_in_use(
            path.with_name(entry.name.removesuffix(".json"))
        ):
            continue
        why = "stale partial download" if PARTIAL_SUFFIX in entry.name else "stale temp file"
        remove.append(_item(path, st, why))
    return remove, in_use


def _target_temps(targets: list[Path], now: float, grace_s: float) -> list[GcItem]:
    """Placement temp files a killed sync left beside its targets."""
    remove: list[GcItem] = []
    for target in sorted(set(targets)):
        for folder, _dirs, files in os.walk(target):
            for name in files:
                if name.startswith(".") and name.endswith(PLACE_TEMP_SUFFIX):
                    path = Path(folder) / name
                    with contextlib.suppress(FileNotFoundError):
                        st = path.lstat()
                        if _old(st, now, grace_s):
                            remove.append(_item(path, st, "stale placement temp file"))
    return remove


def plan_gc(layout: StoreLayout, *, now: float, grace_s: float = GRACE_S) -> GcPlan:
    """What gc would remove now (reads the registered locks, lists blobs and temp dirs)."""
    keep, dead, live = _referenced(layout)
    blobs, kept = _blob_items(layout, keep)
    temps, in_use = _temp_items(layout, now, grace_s)
    dead_entries = {r.entry for r in dead}
    targets = [
        r.target
        for r in roots.registered(layout)
        if r.target is not None and r.entry not in dead_entries and r.target.is_dir()
    ]
    temps += _target_temps(targets, now, grace_s)
    return GcPlan(
        blobs=tuple(blobs),
        temps=tuple(temps),
        dead_roots=tuple(dead),
        kept_blobs=kept,
        in_use=in_use,
        locks=live,
    )


def apply_gc(plan: GcPlan, layout: StoreLayout, state: StateCache) -> int:
    """Remove what `plan` lists; returns the bytes freed. Partials are re-checked for a live
    writer right before they go."""
    freed = 0
    for root in plan.dead_roots:
        roots.drop(root)
    for item in plan.blobs:
        with contextlib.suppress(FileNotFoundError):
            item.path.unlink()
            freed += item.frees
        state.forget(item.path)
        with contextlib.suppress(OSError):
            item.path.parent.rmdir()  # only when the shard folder became empty
    for item in plan.temps:
        if item.path.name.endswith((PARTIAL_SUFFIX, FETCH_LOCK_SUFFIX)) and is_in_use(item.path):
            continue
        with contextlib.suppress(FileNotFoundError):
            item.path.unlink()
            freed += item.frees
    return freed
