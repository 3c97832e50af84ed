"""`modelsync verify`: the store's blobs and the placed files against the lock; exit 4 on any
mismatch, naming each file with expected and actual size and digest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelsync.errors import IntegrityError
from modelsync.log import get_logger
from modelsync.ops import project as proj
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state
from modelsync.sync.desired import ProfileChoice
from modelsync.sync.verify import VerifyReport, verify_inventory

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class VerifyRequest(proj.ProjectRequest):
    """What `verify` checks, and how deeply."""

    full: bool = False


@dataclass(frozen=True, slots=True)
class VerifyOutcome:
    """A clean verification: what was checked, for which profile."""

    report: VerifyReport
    profile: ProfileChoice
    target_root: Path


def verify_project(request: VerifyRequest) -> VerifyOutcome:
    """Check everything the lock places here; IntegrityError (exit 4) listing each bad file."""
    loaded = proj.load(request.manifest, request.environ)
    if loaded.lock is None:
        raise proj.no_lock_error(loaded.lock_path)
    ctx = proj.context_for(loaded, loaded.lock, request)
    layout = StoreLayout(request.store)
    with open_state(layout.state_path) as state:
        # scope=(): verify looks at the wanted files only, never at stale placements
        inventory, _record = proj.survey(ctx, BlobStore(layout, state), scope=(), full=request.full)
    report = verify_inventory(ctx.wanted, inventory, full=request.full)
    for bad in report.mismatches:
        log.warning(
            "verify.mismatch",
            file=bad.rel,
            path=str(bad.path),
            expected=bad.expected,
            found=bad.found,
        )
    if not report.ok:
        listed = "; ".join(
            f"{bad.path}: expected {bad.expected}, found {bad.found}" for bad in report.mismatches
        )
        raise IntegrityError(
            f"{len(report.mismatches)} of {report.files} files fail verification: {listed}",
            hint="run `modelsync sync --repair` to re-fetch and re-link them",
        )
    return VerifyOutcome(report, ctx.profile, ctx.target_root)
