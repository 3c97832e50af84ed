"""Refuse a download plan up front when the store's disk cannot hold it (design.md section 6)."""

from __future__ import annotations

import shutil
from pathlib import Path

from modelsync.errors import UsageError
from modelsync.paths import existing_part
from modelsync.units import human_bytes


def check_free_space(*, needed: int, free: int, where: Path, held: int = 0) -> None:
    """Raise a usage error (exit 2) with both numbers when `needed` exceeds `free`; `held`:
    bytes of the same files partial downloads already hold (resumed, so not needed again)."""
    if needed > free:
        partials = (
            f"; another {human_bytes(held)} ({held} bytes) are already in partial downloads there"
            if held
            else ""
        )
        raise UsageError(
            f"{where}: the plan fetches {human_bytes(needed)} ({needed} bytes{partials}) "
            f"but only {human_bytes(free)} ({free} bytes) are free",
            hint="free some space (`modelsync gc`) or pass --store on a larger disk",
        )


def free_bytes(path: Path) -> int:
    """Free bytes on the filesystem that holds `path` (or its nearest existing parent)."""
    return shutil.disk_usage(existing_part(path)).free
