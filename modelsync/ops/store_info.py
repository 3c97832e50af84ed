"""`modelsync store`: what the blob store holds: size, blobs, the bytes dedup saves, the
registered projects, partial downloads and quarantined bytes. Read only, without the store lock
(a run changing the store meanwhile makes the numbers a moment old, never wrong in kind)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from modelsync.digest import is_sha256
from modelsync.store import roots
from modelsync.store.layout import PARTIAL_SUFFIX, StoreLayout


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    """One registered lock."""

    lock: Path
    target: Path | None
    exists: bool
    """False: the lock was moved or deleted; gc keeps its blobs until `--forget-missing`."""
    blobs: int | None
    """Blobs the lock listed when it last synced (None: not recorded, an old registration)."""
    bytes: int
    """Bytes of those blobs present in the store."""


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """The store at a glance."""

    store: Path
    blobs: int
    blob_bytes: int
    shared_bytes: int
    """Bytes not stored twice: each blob counted once more for every further file (in any
    registered project) that uses it."""
    projects: tuple[ProjectInfo, ...]
    partials: int
    partial_bytes: int
    quarantined: int
    quarantined_bytes: int

    @property
    def total_bytes(self) -> int:
        """Blobs, partials and quarantined bytes together (the store's size on disk)."""
        return self.blob_bytes + self.partial_bytes + self.quarantined_bytes


def summarize(
    store: Path,
    blobs: Mapping[str, int],
    registered: Iterable[tuple[roots.Root, bool]],
    partials: Iterable[int],
    quarantined: Iterable[int],
) -> StoreInfo:
    """Pure: blob sizes by digest, registrations (with whether their lock exists), partial
    and quarantined sizes → the summary."""
    uses: dict[str, int] = {}
    projects = []
    for root, exists in registered:
        listed = root.blobs
        for sha, names in (listed or {}).items():
            uses[sha] = uses.get(sha, 0) + len(names)
        projects.append(
            ProjectInfo(
                lock=root.lock,
                target=root.target,
                exists=exists,
                blobs=None if listed is None else len(listed),
                bytes=sum(blobs.get(sha, 0) for sha in listed or {}),
            )
        )
    shared = sum(blobs[sha] * (n - 1) for sha, n in uses.items() if n > 1 and sha in blobs)
    partial_sizes = list(partials)
    bad_sizes = list(quarantined)
    return StoreInfo(
        store=store,
        blobs=len(blobs),
        blob_bytes=sum(blobs.values()),
        shared_bytes=shared,
        projects=tuple(projects),
        partials=len(partial_sizes),
        partial_bytes=sum(partial_sizes),
        quarantined=len(bad_sizes),
        quarantined_bytes=sum(bad_sizes),
    )


def _sizes(paths: Iterable[Path]) -> list[tuple[str, int]]:
    found = []
    for path in paths:
        try:
            found.append((path.name, path.stat().st_size))
        except OSError:
            continue  # removed by a gc meanwhile
    return found


def store_info(store: Path) -> StoreInfo:
    """Scan `store` (stat calls only; no content is read) and summarize it."""
    layout = StoreLayout(store)
    blobs = {name: size for name, size in _sizes(layout.blobs_dir.glob("??/*")) if is_sha256(name)}
    registered = [(root, root.lock.exists()) for root in roots.registered(layout)]
    partials = [size for _, size in _sizes(layout.tmp_dir.glob(f"*{PARTIAL_SUFFIX}"))]
    quarantined = [
        size for _, size in _sizes(p for p in layout.quarantine_dir.rglob("*") if p.is_file())
    ]
    return summarize(store, blobs, registered, partials, quarantined)
