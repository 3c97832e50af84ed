"""Garbage collection: blobs no root references, stale temp files, and bytes that sat in
quarantine/ for a week.

Plan, then apply. The roots (design.md section 3) are the registered locks (`locks.d/`) and
the placement records in their target dirs: a blob a registered lock lists, or that a placed
file still links to, is kept. A registration whose lock is gone (a project moved or deleted)
is reported and keeps the blobs it listed when it last synced, until `forget_missing` drops it
(as it drops the lock of an import no sync took over, `roots.register_import`).
Each blob to remove is described by the names the registrations and records give it. Temp
files are removed only when older than a grace period, and a partial download is never removed
while a live process holds its lock (`partial.is_in_use`), whatever its age. The caller holds
the store lock to apply.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from modelsync.digest import is_sha256
from modelsync.errors import LockfileError, UsageError
from modelsync.lockfile.io import read_lock
from modelsync.lockfile.model import Lockfile
from modelsync.store import roots
from modelsync.store.layout import (
    FETCH_LOCK_SUFFIX,
    PARTIAL_SUFFIX,
    PLACE_TEMP_SUFFIX,
    StoreLayout,
)
from modelsync.store.partial import PARTS_SUFFIX, is_in_use
from modelsync.store.state import StateCache

GRACE_S = 24 * 3600
"""Temp files younger than this are left alone (a partial download may still be resumed)."""
QUARANTINE_S = 7 * 24 * 3600
"""Bad bytes set aside in quarantine/ are kept this long (for a look at what went wrong)."""

PlacedBlobs = Callable[[Path], Iterable[tuple[str, str, bool]]]
"""A target dir → (sha256, placed file, live) for each placement its records list (the sync
layer reads them); live: the file is still what sync placed there."""


@dataclass(frozen=True, slots=True)
class GcItem:
    """A file gc removes: its size, the bytes removing it frees (0 while other links to the
    same inode remain, e.g. a hardlinked target), and why."""

    path: Path
    size: int
    frees: int
    why: str
    names: tuple[str, ...] = ()
    """What a blob was known as (`repo/path`, placed files), where a root still said so."""


@dataclass(frozen=True, slots=True)
class GcPlan:
    """What gc would remove; falsy when there is nothing to do."""

    blobs: tuple[GcItem, ...] = ()
    temps: tuple[GcItem, ...] = ()
    dead_roots: tuple[roots.Root, ...] = ()
    """Registrations dropped (their lock is gone and `forget_missing` was asked)."""
    missing_roots: tuple[roots.Root, ...] = ()
    """Registrations whose lock is gone, kept (with the blobs they listed) and reported."""
    held_blobs: int = 0
    """Unreferenced blobs kept because a missing registration does not say what it used."""
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


@dataclass(slots=True)
class _Roots:
    keep: set[str] = field(default_factory=set)
    names: dict[str, set[str]] = field(default_factory=dict)
    dead: list[roots.Root] = field(default_factory=list)
    missing: list[roots.Root] = field(default_factory=list)
    live: int = 0

    def name(self, blobs: roots.Named, *, keep: bool) -> None:
        for sha, names in blobs.items():
            self.names.setdefault(sha, set()).update(names)
            if keep:
                self.keep.add(sha)


def _read(root: roots.Root) -> Lockfile | None:
    if root.lock == root.entry:
        raise UsageError(
            f"{root.entry}: unreadable lock registration; gc cannot tell which blobs it keeps",
            hint="delete that file and run `modelsync sync` in each project using this store",
        )
    try:
        return read_lock(root.lock)
    except LockfileError as err:
        raise UsageError(
            f"gc cannot tell which blobs {root.lock} needs: {err.message}",
            hint=f"fix or regenerate that lock (`modelsync lock`), or delete {root.entry} "
            "to stop keeping its blobs",
        ) from err


def _referenced(layout: StoreLayout, placed: PlacedBlobs, *, forget_missing: bool) -> _Roots:
    """The registered locks and their targets' placement records: what they keep and name."""
    found = _Roots()
    for root in roots.registered(layout):
        lock = _read(root)
        if root.imported and forget_missing:  # an import no sync took over
            lock = None
        if lock is None and forget_missing:
            found.dead.append(root)
            found.name(root.blobs or {}, keep=False)
            continue
        if lock is None:
            found.missing.append(root)
            found.name(root.blobs or {}, keep=True)
        else:
            found.live += 1
            found.name(roots.named_blobs(lock), keep=True)
        if root.target is not None:
            for sha, where, live in placed(root.target):
                found.name({sha: (where,)}, keep=live)
    return found


def _item(path: Path, st: os.stat_result, why: str, names: Iterable[str] = ()) -> GcItem:
    frees = st.st_blocks * 512 if st.st_nlink <= 1 else 0
    return GcItem(path, st.st_size, frees, why, tuple(sorted(names)))


def _blob_items(layout: StoreLayout, found: _Roots) -> tuple[list[GcItem], int]:
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
            if entry.name in found.keep:
                kept += 1
                continue
            st = entry.stat(follow_symlinks=False)
            names = found.names.get(entry.name, ())
            remove.append(_item(Path(entry.path), st, "unreferenced", names))
    return remove, kept


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """A store folder's entries by name; none when it is missing or a symlink: a co-user
    sharing the store can make `tmp/` or `quarantine/` one before first use, and gc removes
    any old file in them."""
    if folder.is_symlink():
        return []
    try:
        return sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []


def _old(st: os.stat_result, now: float, grace_s: float) -> bool:
    return now - st.st_mtime > grace_s


def _temp_items(layout: StoreLayout, now: float, grace_s: float) -> tuple[list[GcItem], int]:
    remove: list[GcItem] = []
    in_use = 0
    for entry in _entries(layout.tmp_dir):
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
        sidecar = next(
            (x for x in (".json", PARTS_SUFFIX) if entry.name.endswith(PARTIAL_SUFFIX + x)), ""
        )
        if sidecar and is_in_use(path.with_name(entry.name.removesuffix(sidecar))):
            continue  # the etag or the parts journal of a download in progress
        why = "stale partial download" if PARTIAL_SUFFIX in entry.name else "stale temp file"
        remove.append(_item(path, st, why))
    return remove, in_use


def _quarantined(layout: StoreLayout, now: float) -> list[GcItem]:
    """Quarantined bytes older than QUARANTINE_S, aged by ctime: the move into quarantine/
    sets it, while the mtime is the blob's own."""
    old = []
    for entry in _entries(layout.quarantine_dir):
        st = entry.stat(follow_symlinks=False)
        if entry.is_file(follow_symlinks=False) and now - st.st_ctime > QUARANTINE_S:
            old.append(_item(Path(entry.path), st, "quarantined bad bytes"))
    return old


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


def plan_gc(
    layout: StoreLayout,
    *,
    now: float,
    placed: PlacedBlobs,
    grace_s: float = GRACE_S,
    forget_missing: bool = False,
) -> GcPlan:
    """What gc would remove now (reads the registered locks and, through `placed`, their
    targets' placement records; lists blobs and temp dirs)."""
    found = _referenced(layout, placed, forget_missing=forget_missing)
    blobs, kept = _blob_items(layout, found)
    held = 0
    if any(r.blobs is None for r in found.missing):
        held, blobs = len(blobs), []  # an old registration that lost its lock: keep all
    temps, in_use = _temp_items(layout, now, grace_s)
    dead_entries = {r.entry for r in found.dead}
    targets = [
        r.target
        for r in roots.registered(layout)
        if r.target is not None and r.entry not in dead_entries and r.target.is_dir()
    ]
    temps += _target_temps(targets, now, grace_s)
    temps += _quarantined(layout, now)
    return GcPlan(
        blobs=tuple(blobs),
        temps=tuple(temps),
        dead_roots=tuple(found.dead),
        missing_roots=tuple(found.missing),
        held_blobs=held,
        kept_blobs=kept,
        in_use=in_use,
        locks=found.live,
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
        if item.path.parent.is_symlink():  # swapped since the plan
            continue
        with contextlib.suppress(FileNotFoundError):
            item.path.unlink()
            freed += item.frees
    return freed
