"""Where things live inside a store (design.md section 3); pure path arithmetic, no I/O.

<store>/blobs/sha256/<first 2 hex>/<64 hex>   read-only, named by content
<store>/tmp/                                  partial downloads, same filesystem as blobs
<store>/state.db                              stat cache: (path, size, mtime, ctime, inode) → sha256
<store>/quarantine/                           bytes found bad: moved here, never deleted on sight
<store>/locks.d/                              registered lock files (roots for gc)
<store>/store.lock                            inter-process lock around store mutation
<store>/projects.d/<key>.lock                 one project's lock/sync runs, one at a time
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelsync.digest import is_sha256

PARTIAL_SUFFIX = ".part"
FETCH_LOCK_SUFFIX = ".fetching"
PLACE_TEMP_SUFFIX = ".modelsync-tmp"
"""Suffix of a placement being built beside its target (`.<name>.<8 hex>.modelsync-tmp`)."""


@dataclass(frozen=True, slots=True)
class StoreLayout:
    """The paths of one store root."""

    root: Path

    @property
    def blobs_dir(self) -> Path:
        """Root of the SHA-256 blob tree."""
        return self.root / "blobs" / "sha256"

    @property
    def tmp_dir(self) -> Path:
        """Partial downloads; on the blobs' filesystem so that finishing one is a rename."""
        return self.root / "tmp"

    @property
    def state_path(self) -> Path:
        """The sqlite stat cache."""
        return self.root / "state.db"

    @property
    def quarantine_dir(self) -> Path:
        """Blobs whose bytes were found bad, kept (not deleted) under unique names."""
        return self.root / "quarantine"

    @property
    def roots_dir(self) -> Path:
        """One small file per lock that synced from this store: the roots `gc` keeps."""
        return self.root / "locks.d"

    @property
    def imports_dir(self) -> Path:
        """Copies of imported bundles' locks, registered as roots until a sync takes over."""
        return self.root / "imports"

    @property
    def parsed_dir(self) -> Path:
        """models.toml and models.lock as parsed by the last run (toml_cache.py)."""
        return self.root / "parsed"

    @property
    def lock_path(self) -> Path:
        """The inter-process lock taken by every run that changes the store."""
        return self.root / "store.lock"

    def blob_path(self, sha256: str) -> Path:
        """`blobs/sha256/ab/abcdef…` for a validated lowercase hex digest."""
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.blobs_dir / sha256[:2] / sha256

    def partial_pattern(self, sha256: str) -> str:
        """Glob (inside tmp_dir) matching every process's partial download of one blob."""
        return f"{sha256}.*{PARTIAL_SUFFIX}"

    def fetch_lock_path(self, sha256: str) -> Path:
        """Held (flock) by the one process downloading `sha256` (store/partial.py)."""
        return self.tmp_dir / f"{sha256}{FETCH_LOCK_SUFFIX}"

    def partial_name(self, sha256: str, owner: str) -> str:
        """A partial's file name: the blob it becomes, then the owning process's tag."""
        return f"{sha256}.{owner}{PARTIAL_SUFFIX}"
