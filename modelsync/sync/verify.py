"""Check the store's blobs and the placed files against the lock (pure, over an Inventory).

By default the inventory trusts what the stat cache vouches for (size + (size, mtime, inode));
with `full` it hashes every blob and every target that is not a hardlink of its blob, so every
byte is read once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelsync.sync.model import BlobSeen, Inventory, TargetSeen, Wanted
from modelsync.sync.plan import describe, refers_to_blob


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One bad file: where, what the lock expects, what is there."""

    rel: str
    path: Path
    expected: str
    found: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What verify checked and what it found wrong."""

    files: int
    blobs: int
    full: bool
    mismatches: tuple[Mismatch, ...] = ()

    @property
    def ok(self) -> bool:
        """Nothing wrong."""
        return not self.mismatches


def _expected(item: Wanted) -> str:
    return f"{item.size} bytes, sha256 {item.sha256}"


def _blob_problem(blob: BlobSeen, item: Wanted) -> Mismatch | None:
    if blob.stat is None:
        return Mismatch(item.rel, blob.path, _expected(item), "missing from the store")
    if blob.trusted:
        return None
    return Mismatch(item.rel, blob.path, _expected(item), describe(blob.stat, blob.actual_sha256))


def _target_problem(item: Wanted, seen: TargetSeen, blob: BlobSeen) -> Mismatch | None:
    stat = seen.stat
    if stat is None:
        return Mismatch(item.rel, item.target, _expected(item), "missing (run `modelsync sync`)")
    if refers_to_blob(stat, blob):
        if blob.trusted:
            return None
        found = describe(stat, blob.actual_sha256)
        if stat.kind == "file":
            found += " (a hardlink of its store blob, changed in place)"
        return Mismatch(item.rel, item.target, _expected(item), found)
    if seen.content_sha256 is not None:
        if seen.content_sha256 == item.sha256:
            return None
        return Mismatch(item.rel, item.target, _expected(item), describe(stat, seen.content_sha256))
    if seen.untouched and seen.record is not None and seen.record.sha256 == item.sha256:
        return None
    found = describe(stat)
    if stat.kind == "file" and seen.record is not None and seen.record.sha256 != item.sha256:
        found += f", placed for an older lock (sha256 {seen.record.sha256})"
    return Mismatch(item.rel, item.target, _expected(item), found)


def verify_inventory(wanted: Sequence[Wanted], inventory: Inventory, *, full: bool) -> VerifyReport:
    """Every blob and target of `wanted` checked against the lock; blobs are named once."""
    mismatches = []
    blob_named: set[str] = set()
    for item in wanted:
        blob = inventory.blobs[item.sha256]
        if item.sha256 not in blob_named:
            blob_named.add(item.sha256)
            problem = _blob_problem(blob, item)
            if problem is not None:
                mismatches.append(problem)
        problem = _target_problem(item, inventory.targets[item.rel], blob)
        if problem is not None:
            mismatches.append(problem)
    return VerifyReport(
        files=len(wanted), blobs=len(inventory.blobs), full=full, mismatches=tuple(mismatches)
    )
