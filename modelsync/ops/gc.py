"""`modelsync gc`: remove blobs that no root references (registered locks, placement records
of their targets), and stale temp files.

Planned without the store lock (`--dry-run` stops there), then planned again and applied
under it, so a sync that registers a lock or adds blobs meanwhile is never undercut.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelsync.log import get_logger
from modelsync.store.gc import GRACE_S, GcPlan, apply_gc, plan_gc
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive
from modelsync.store.state import open_state
from modelsync.sync.placed import placed_blobs

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class GcRequest:
    """What `gc` was asked for."""

    store: Path
    dry_run: bool = False
    forget_missing: bool = False
    """Drop the registrations whose lock is gone (moved or deleted projects)."""
    wait: bool = True
    wait_timeout: float | None = None
    grace_s: float = GRACE_S
    clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class GcReport:
    """The plan, and the bytes freed when it was applied."""

    store: Path
    plan: GcPlan
    freed: int = 0
    dry_run: bool = False


def gc_store(request: GcRequest) -> GcReport:
    """Run gc as asked; raises BusyError (exit 6) with --no-wait while another run works."""
    layout = StoreLayout(request.store)

    def planned() -> GcPlan:
        return plan_gc(
            layout,
            now=request.clock(),
            grace_s=request.grace_s,
            placed=placed_blobs,
            forget_missing=request.forget_missing,
        )

    plan = planned()
    if request.dry_run or not plan:
        return GcReport(request.store, plan, dry_run=request.dry_run)
    with exclusive(layout.lock_path, wait=request.wait, wait_s=request.wait_timeout):
        plan = planned()
        with open_state(layout.state_path) as state:
            freed = apply_gc(plan, layout, state)
    log.info(
        "gc.done",
        blobs=len(plan.blobs),
        temps=len(plan.temps),
        dropped_locks=len(plan.dead_roots),
        freed=freed,
    )
    return GcReport(request.store, plan, freed=freed)
