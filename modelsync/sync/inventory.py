"""What is on disk for one sync (I/O, reads only): the wanted targets, their blobs, the record.

A no-change run costs one lstat() per target, one stat() and one stat-cache lookup per blob and
per placed copy: no content is read. Bytes are hashed only where stat cannot decide: a blob or
placed copy the stat cache does not vouch for (new store database, or the file changed: the
ctime shows a write even when the mtime was put back), a regular file at a target that sync did
not place (or that changed since) but has the wanted size, a blob whose size is not the lock's
(its bytes decide whether the blob or the lock is wrong), and everything with `full`.

It judges, without writing, which link modes the target dir takes from the store
(`sync.link.supported`). For a blob the store lacks or holds bad, it also finds what apply
would start from (no content read): local files to adopt (the Hugging Face and Ollama caches,
untouched placements of it) and the partial download a fetch would resume, so the plan, and so
`--dry-run`, can say so.
"""

from __future__ import annotations

import dataclasses
import os
import stat as stat_module
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from modelsync.digest import sha256_file
from modelsync.errors import UsageError
from modelsync.store.blobs import BlobStore
from modelsync.store.partial import resumable
from modelsync.sync.adopt import AdoptionSources
from modelsync.sync.desired import target_of
from modelsync.sync.link import supported
from modelsync.sync.model import (
    BlobSeen,
    Candidate,
    FileStat,
    Inventory,
    LinkMode,
    Placement,
    TargetSeen,
    Wanted,
)
from modelsync.sync.placed import claimed_elsewhere, record_path


def file_stat(path: Path) -> FileStat | None:
    """lstat() of `path` as a FileStat (a symlink's own, with its target); None if absent."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    if stat_module.S_ISLNK(st.st_mode):
        return FileStat(
            st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, "symlink", str(path.readlink())
        )
    kind = "file" if stat_module.S_ISREG(st.st_mode) else "other"
    return FileStat(st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, kind)


def check_parents(root: Path, wanted: Sequence[Wanted]) -> None:
    """Refuse target folders that are symlinks leading outside the target dir."""
    real_root = os.path.realpath(root)
    seen: set[Path] = set()
    for item in wanted:
        folder = item.target.parent
        if folder in seen:
            continue
        seen.add(folder)
        real = os.path.realpath(folder)
        if os.path.commonpath([real, real_root]) != real_root:
            raise UsageError(
                f"{folder}: leads to {real}, outside the target dir {root}; refusing to place "
                f"{item.rel} through it",
                hint="remove that symlink (or point settings.target at the other disk)",
            )


def _blob(blobs: BlobStore, real_blobs: Path, sha256: str, full: bool) -> BlobSeen:
    path = real_blobs / sha256[:2] / sha256
    st = blobs.stat(sha256)
    if st is None:
        return BlobSeen(sha256, path, None)
    seen = FileStat(st.st_size, st.st_ino, st.st_dev, st.st_mtime_ns, "file")
    if not full and blobs.trusted(sha256, st):
        return BlobSeen(sha256, path, seen, trusted=True)
    actual = blobs.hash(sha256, st)
    return BlobSeen(sha256, path, seen, actual_sha256=actual, trusted=actual == sha256)


def _local(sources: AdoptionSources, blob: BlobSeen, size: int) -> tuple[Candidate, ...]:
    """The adoption candidates of the wanted size, leaving out the bad blob's own inode."""
    found = []
    for candidate in sources.candidates(blob.sha256):
        try:
            st = candidate.path.stat()
        except OSError:
            continue
        bad = blob.stat is not None and (st.st_ino, st.st_dev) == (
            blob.stat.inode,
            blob.stat.device,
        )
        if st.st_size == size and not bad:
            found.append(candidate)
    return tuple(found)


def _starts(
    blobs: BlobStore,
    seen_blobs: dict[str, BlobSeen],
    sizes: Mapping[str, int],
    own: Sequence[TargetSeen],
    environ: Mapping[str, str],
) -> None:
    """Fill in where each blob the store lacks would come from: local copies, partials."""
    placed: dict[str, list[Path]] = {}  # what sync placed and nobody touched: never users' files
    for seen in own:
        if seen.record is not None and seen.untouched:
            placed.setdefault(seen.record.sha256, []).append(seen.target)
    sources = AdoptionSources.scan(environ, placed)
    for sha256, blob in seen_blobs.items():
        if not blob.ok:
            seen_blobs[sha256] = dataclasses.replace(
                blob,
                local=_local(sources, blob, sizes[sha256]),
                partial=resumable(blobs.layout, sha256, sizes[sha256]),
            )


def _content(blobs: BlobStore, item: Wanted, target: TargetSeen, *, full: bool) -> str | None:
    """The target's digest where stat cannot decide whether it holds the wanted bytes: a file
    sync did not place (or that changed since) of the wanted size; a copy sync placed, which
    the stat cache (keyed by the ctime too, so a write with the mtime put back shows) vouches
    for or else is hashed; anything with `full`."""
    seen = target.stat
    if seen is None or seen.kind != "file":
        return None
    record = target.record
    own_copy = (
        target.untouched
        and record is not None
        and record.sha256 == item.sha256
        and record.mode in (LinkMode.COPY, LinkMode.REFLINK)
    )
    if not (full or own_copy or (not target.untouched and seen.size == item.size)):
        return None
    st = item.target.stat()
    if not full:
        cached = blobs.state.lookup(item.target, st)
        if cached is not None:
            return cached
    actual = sha256_file(item.target)
    blobs.state.record(item.target, st, actual)
    return actual


def take_inventory(
    blobs: BlobStore,
    wanted: Sequence[Wanted],
    target_root: Path,
    record: Mapping[str, Placement],
    *,
    lock: Path,
    recorded_mode: LinkMode | None = None,
    scope: Collection[str] | None = None,
    full: bool = False,
    registered: bool = True,
    environ: Mapping[str, str] | None = None,
) -> Inventory:
    """Look at every wanted target and blob, and at recorded placements within `scope` (model
    names; None: all) that are no longer wanted; with `environ` (where the caches are), also at
    where missing blobs would come from."""
    check_parents(target_root, wanted)
    real_blobs = Path(os.path.realpath(blobs.layout.blobs_dir))
    sizes = {w.sha256: w.size for w in wanted}
    seen_blobs = {sha: _blob(blobs, real_blobs, sha, full) for sha in sizes}
    targets: dict[str, TargetSeen] = {}
    for item in wanted:
        seen = file_stat(item.target)
        placement = record.get(item.rel)
        target = TargetSeen(item.rel, item.target, seen, placement)
        if seen is not None:
            blob = seen_blobs[item.sha256].stat
            same_inode = blob is not None and (seen.inode, seen.device) == (
                blob.inode,
                blob.device,
            )
            if not same_inode:
                digest = _content(blobs, item, target, full=full)
                target = TargetSeen(item.rel, item.target, seen, placement, digest)
        targets[item.rel] = target
    stale = []
    for rel, placement in sorted(record.items()):
        model, _, path = rel.partition("/")
        if rel in targets or (scope is not None and model not in scope):
            continue
        try:
            where = target_of(target_root, model, path)
        except UsageError:
            continue  # a record entry that points outside is never acted on
        stale.append(TargetSeen(rel, where, file_stat(where), placement))
    claimed = claimed_elsewhere(record_path(target_root, lock)) if stale else set()
    if environ is not None and not all(b.ok for b in seen_blobs.values()):
        _starts(blobs, seen_blobs, sizes, (*targets.values(), *stale), environ)
    return Inventory(
        target_root=target_root,
        blobs=seen_blobs,
        targets=targets,
        stale=tuple(stale),
        claimed_elsewhere=frozenset(claimed & {s.rel for s in stale}),
        lock=lock,
        recorded_mode=recorded_mode,
        root_registered=registered,
        links=supported(blobs.layout.blobs_dir, target_root),
    )
