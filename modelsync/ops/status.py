"""`modelsync status`: is the lock fresh, and what would `sync` do? Exit 0 clean, 3 drift.

Read-only and offline: the same inventory and plan as `sync --dry-run`, without the store lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelsync.errors import ExitCode
from modelsync.lockfile.freshness import Freshness
from modelsync.ops import project as proj
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state
from modelsync.sync.desired import ProfileChoice
from modelsync.sync.model import SyncPlan
from modelsync.sync.plan import plan_sync


@dataclass(frozen=True, slots=True)
class StatusRequest(proj.ProjectRequest):
    """What `status` looks at."""


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Freshness of the lock and the plan a sync would follow (None without a lock)."""

    lock_path: Path
    fresh: Freshness
    profile: ProfileChoice | None = None
    target_root: Path | None = None
    files: int = 0
    plan: SyncPlan | None = None

    @property
    def clean(self) -> bool:
        """Fresh lock and nothing for sync to do."""
        return bool(self.fresh) and self.plan is not None and not self.plan

    @property
    def exit_code(self) -> ExitCode:
        """0 clean, 3 drift (design.md section 2)."""
        return ExitCode.OK if self.clean else ExitCode.STALE


def project_status(request: StatusRequest) -> StatusReport:
    """Look, change nothing, send nothing."""
    layout = StoreLayout(request.store)
    loaded = proj.load(request.manifest, request.environ, parsed=layout.parsed_dir)
    if loaded.lock is None:
        return StatusReport(loaded.lock_path, loaded.fresh)
    ctx = proj.context_for(loaded, loaded.lock, request)
    with open_state(layout.state_path) as state:
        inventory, _record = proj.survey(
            ctx, BlobStore(layout, state), scope=request.models or None, environ=request.environ
        )
    plan = plan_sync(ctx.wanted, inventory, link=ctx.link)
    return StatusReport(
        lock_path=loaded.lock_path,
        fresh=loaded.fresh,
        profile=ctx.profile,
        target_root=ctx.target_root,
        files=len(ctx.wanted),
        plan=plan,
    )
