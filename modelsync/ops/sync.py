"""`modelsync sync`: lock (if stale) → inventory → plan → fetch → apply under the store lock.

The plan is first built without the store lock: when there is nothing to do (the common case)
the run ends there, having made stat() calls and stat-cache lookups only, no HTTP request and
no content read. Blobs to download are fetched without the store lock, which is taken only to
register the project (so gc keeps what arrives), to adopt, and to admit each blob: a slow
file blocks no other project (design.md section 3); a blob another run is fetching is waited
for, never fetched twice. Then it takes the store lock (waiting, or exit 6 with `--no-wait`),
builds the plan again (a run it waited for may have done the work) and applies it.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Awaitable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from modelsync.errors import StaleError, UsageError
from modelsync.fetch.progress import ProgressSink
from modelsync.fetch.sources import MirrorFinder, no_mirrors
from modelsync.log import get_logger
from modelsync.manifest.load import load_manifest
from modelsync.net.retry import RetryPolicy
from modelsync.ops import project as proj
from modelsync.rules import HF_ENDPOINT_ENV
from modelsync.store import roots
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive, exclusive_async, project_lock
from modelsync.store.state import open_state
from modelsync.sync.apply import (
    ApplyOptions,
    ProgressFactory,
    apply_plan,
    conflict_error,
    fetch_missing,
    no_progress,
)
from modelsync.sync.desired import ProfileChoice, misfits
from modelsync.sync.model import Applied, FetchStep, Inventory, LinkMode, Placement, SyncPlan
from modelsync.sync.plan import plan_sync

__all__ = [
    "Applied",
    "FetchStep",
    "LinkMode",
    "ProgressFactory",
    "ProgressSink",
    "SyncPlan",
    "SyncReport",
    "SyncRequest",
    "run_sync",
    "sync_project",
]
"""The request, the report and the values it carries, for the command that renders them."""

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SyncRequest(proj.ProjectRequest):
    """What the user asked `sync` (or `sync --dry-run`) for."""

    frozen: bool = False
    locked: bool = False
    dry_run: bool = False
    jobs: int = 4
    connections: int | None = None
    """Connections for one large file (`--connections`); None: 8, or one stream where the
    first piece shows one is as fast."""
    link: LinkMode | None = None
    """Forced by `--link`; None: settings.link, whose default `auto` probes."""
    repair: bool = False
    strict_fit: bool = False
    """A locked choice that does not fit this machine is an error, not a warning."""
    offline: bool = False
    wait: bool = True
    wait_timeout: float | None = None
    """Seconds to wait for the store lock before exit 6 (None: as long as it takes)."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: ProgressFactory = no_progress


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What `sync` found and did."""

    lock_path: Path
    target_root: Path
    profile: ProfileChoice
    models: tuple[str, ...]
    files: int
    plan: SyncPlan
    applied: Applied | None
    """None for a dry run or when there was nothing to do."""
    link_mode: str | None
    """The mode used (a dry run: the one it would place by), else the one recorded before."""
    relocked: bool = False
    stale: str | None = None
    """Why the lock is stale, when a dry run planned from it anyway."""
    dry_run: bool = False
    seconds: float = 0.0
    misfits: tuple[str, ...] = ()
    """One line per model whose locked choice needs more memory than this machine has."""


async def _relock(request: SyncRequest) -> None:
    """`modelsync lock` first, like `uv sync` (imported here: it loads the network stack)."""
    from modelsync.hardware.detect import detect  # noqa: PLC0415
    from modelsync.ops.lock import LockRequest, lock_project  # noqa: PLC0415

    await lock_project(
        LockRequest(
            manifest=request.manifest,
            offline=request.offline,
            environ=dict(request.environ),
            retry=request.retry,
            detector=request.detector or detect,
        )
    )


def _plan(
    ctx: proj.SyncContext, blobs: BlobStore, request: SyncRequest
) -> tuple[SyncPlan, Inventory, dict[str, Placement]]:
    inventory, record = proj.survey(
        ctx, blobs, scope=request.models or None, full=request.repair, environ=request.environ
    )
    plan = plan_sync(ctx.wanted, inventory, link=request.link or ctx.link, repair=request.repair)
    return plan, inventory, record


Steps = Generator[Awaitable[Any], Any, SyncReport]
"""`_steps`: it yields what must be awaited (a re-lock, the downloads) and gets the result."""


async def sync_project(request: SyncRequest) -> SyncReport:
    """Run `sync` as asked, under the project lock (not for a dry run, which changes nothing);
    raises ModelsyncError subclasses (exit codes in errors.py)."""
    steps = _steps(request)
    first = _start(steps)
    return first if isinstance(first, SyncReport) else await _drive(steps, first)


def run_sync(request: SyncRequest) -> SyncReport:
    """`sync_project` for the CLI: an event loop only once there is something to await, so a
    sync with nothing to do never imports asyncio (about 20 ms of a no-op run's start-up)."""
    steps = _steps(request)
    first = _start(steps)
    if isinstance(first, SyncReport):
        return first
    import asyncio  # noqa: PLC0415

    return asyncio.run(_drive(steps, first))


def _start(steps: Steps) -> Awaitable[Any] | SyncReport:
    """Run `steps` up to the first thing to await; the report if it ends before."""
    try:
        return next(steps)
    except StopIteration as done:
        return cast(SyncReport, done.value)


async def _drive(steps: Steps, step: Awaitable[Any]) -> SyncReport:
    """Await what `steps` yields, sending each result back, to its report."""
    while True:
        try:
            result = await step
        except BaseException as exc:  # noqa: BLE001 - re-raised by throw, after `steps` unwinds
            step = steps.throw(exc)
            continue
        try:
            step = steps.send(result)
        except StopIteration as done:
            return cast(SyncReport, done.value)


def _steps(request: SyncRequest) -> Steps:
    if request.dry_run:
        return (yield from _sync(request))
    _check_target(request)  # a refused target is refused before the project lock makes the store
    with project_lock(
        request.store, request.manifest, wait=request.wait, wait_s=request.wait_timeout
    ):
        return (yield from _sync(request))


def _check_target(request: SyncRequest) -> None:
    project = load_manifest(
        request.manifest,
        environ=request.environ,
        hub_endpoint=request.environ.get(HF_ENDPOINT_ENV),
        parsed=StoreLayout(request.store).parsed_dir,
    )
    home = request.environ.get("HOME") or str(Path.home())
    root = proj.target_root(request.manifest, project)
    proj.check_target(root, request.manifest, request.store, home)


def _sync(request: SyncRequest) -> Steps:
    started = time.monotonic()
    if request.frozen and request.locked:
        # uv refuses it too: --frozen would skip the check --locked asks for, so a stale lock
        # would pass CI silently.
        raise UsageError(
            "--frozen and --locked contradict each other: --frozen uses models.lock as it is, "
            "--locked fails when it is stale",
            hint="in CI use --locked alone",
        )
    parsed = StoreLayout(request.store).parsed_dir
    loaded = proj.load(request.manifest, request.environ, parsed=parsed)
    relocked = False
    stale = None
    if request.frozen or request.dry_run:
        if loaded.lock is None:
            raise proj.no_lock_error(loaded.lock_path)
        stale = None if loaded.fresh else loaded.fresh.reason
        if stale and request.frozen:
            log.warning("sync.lock_stale", lock=str(loaded.lock_path), reason=stale)
    elif request.locked:
        if not loaded.fresh:
            raise StaleError(
                f"{loaded.lock_path} is stale: {loaded.fresh.reason}",
                hint="run `modelsync lock` and commit it (or `modelsync sync` without --locked)",
            )
    elif not loaded.fresh:
        log.info("sync.relock", reason=loaded.fresh.reason)
        yield _relock(request)
        loaded = proj.load(request.manifest, request.environ, parsed=parsed)
        relocked = True
    assert loaded.lock is not None
    ctx = proj.context_for(loaded, loaded.lock, request)
    home = request.environ.get("HOME") or str(Path.home())
    proj.check_target(ctx.target_root, loaded.manifest, request.store, home)
    misfit = _fit_check(ctx, request)
    layout = StoreLayout(request.store)
    applied = None
    with open_state(layout.state_path) as state:
        blobs = BlobStore(layout, state)
        plan, inventory, _record = _plan(ctx, blobs, request)
        if plan and not request.dry_run:
            plan, inventory, applied = yield _fetch_and_apply(
                ctx, blobs, request, loaded.lock_path, plan=plan, inventory=inventory
            )
    mode = plan.link_mode.value if plan.link_mode else None  # what a dry run would place by
    if applied is not None:
        mode = applied.link_modes.get(str(ctx.target_root))
    report = SyncReport(
        lock_path=loaded.lock_path,
        target_root=ctx.target_root,
        profile=ctx.profile,
        models=tuple(m.name for m in ctx.models),
        files=len(ctx.wanted),
        plan=plan,
        applied=applied,
        link_mode=mode or (inventory.recorded_mode.value if inventory.recorded_mode else None),
        relocked=relocked,
        stale=stale,
        dry_run=request.dry_run,
        seconds=time.monotonic() - started,
        misfits=misfit,
    )
    log.info(
        "sync.done" if not request.dry_run else "sync.planned",
        models=len(report.models),
        files=report.files,
        fetch=len(plan.fetch),
        place=len(plan.place),
        remove=len(plan.remove),
        seconds=round(report.seconds, 3),
    )
    return report


def _fit_check(ctx: proj.SyncContext, request: SyncRequest) -> tuple[str, ...]:
    """Whether the locked choices fit this machine: warnings, or with --strict-fit exit 2
    before anything is fetched. A lock is made on one machine and kept on all (design.md 3)."""
    if all(m.memory is None for m in ctx.models):
        return ()
    hardware = ctx.hardware or proj.detect_hardware(request.detector)
    found = misfits(ctx.lock, ctx.models, hardware)
    if found and request.strict_fit:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise UsageError(found[0].problem + more, hint=found[0].fix)
    for item in found:
        log.warning("sync.does_not_fit", model=item.model, problem=item.problem, fix=item.fix)
    return tuple(item.line() for item in found)


async def _fetch_and_apply(
    ctx: proj.SyncContext,
    blobs: BlobStore,
    request: SyncRequest,
    lock_path: Path,
    *,
    plan: SyncPlan,
    inventory: Inventory,
) -> tuple[SyncPlan, Inventory, Applied | None]:
    """Fetch what `plan` lacks outside the store lock, then plan again and apply under it;
    returns the plan to report, the inventory and what was done (None: nothing)."""
    layout = blobs.layout
    options = _options(request, ctx)
    ahead = None
    if plan.conflicts:  # refused before anything is fetched or changed
        raise conflict_error(plan)
    if plan.fetch:
        with exclusive(layout.lock_path, wait=request.wait, wait_s=request.wait_timeout):
            roots.register(layout, lock_path, ctx.target_root, ctx.lock)  # gc keeps what arrives
        admit = functools.partial(
            exclusive_async, layout.lock_path, wait=request.wait, wait_s=request.wait_timeout
        )
        ahead = await fetch_missing(
            plan, inventory, blobs, dataclasses.replace(options, admit=admit)
        )
    applied = None
    with exclusive(layout.lock_path, wait=request.wait, wait_s=request.wait_timeout):
        first = plan
        plan, inventory, record = _plan(ctx, blobs, request)
        if plan:
            roots.register(layout, lock_path, ctx.target_root, ctx.lock)
            applied = await apply_plan(plan, inventory, blobs, record, options, ahead=ahead)
    if ahead is not None:  # report what this run fetched, even where another run placed it
        if applied is None and (ahead.applied.fetched or ahead.applied.adopted):
            applied = ahead.applied
        if applied is not None:
            plan = dataclasses.replace(plan, fetch=first.fetch)
    return plan, inventory, applied


def _options(request: SyncRequest, ctx: proj.SyncContext) -> ApplyOptions:
    used = {w.registry for w in ctx.wanted}
    remotes = ctx.loaded.project.remotes
    mirrors: MirrorFinder = no_mirrors
    if remotes:  # boto3 is imported only when a remote must sign a download
        from modelsync.remote.s3 import mirror_finder  # noqa: PLC0415

        mirrors = mirror_finder(remotes)
    return ApplyOptions(
        jobs=request.jobs,
        connections=request.connections,
        offline=request.offline,
        tokens=proj.tokens(ctx.loaded.project, used, request.environ),
        retry=request.retry,
        progress=request.progress,
        gitignore=ctx.loaded.project.settings.gitignore,
        wait=request.wait,
        wait_s=request.wait_timeout,
        mirrors=mirrors,
    )
