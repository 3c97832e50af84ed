"""Where things live inside a store (design.md section 3); pure path arithmetic, no I/O.

<store>/blobs/sha256/<first 2 hex>/<64 hex>   read-only, named by content
<store>/tmp/                                  partial downloads, same filesystem as blobs
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelsync.digest import is_sha256

PARTIAL_SUFFIX = ".part"


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

    def blob_path(self, sha256: str) -> Path:
        """`blobs/sha256/ab/abcdef…` for a validated lowercase hex digest."""
        if not is_sha256(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return self.blobs_dir / sha256[:2] / sha256

    def partial_pattern(self, sha256: str) -> str:
        """Glob (inside tmp_dir) matching every process's partial download of one blob."""
        return f"{sha256}.*{PARTIAL_SUFFIX}"

    def partial_name(self, sha256: str, owner: str) -> str:
        """A partial's file name: the blob it becomes, then the owning process's tag."""
        return f"{sha256}.{owner}{PARTIAL_SUFFIX}"
