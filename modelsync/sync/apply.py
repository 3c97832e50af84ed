"""Execute a SyncPlan (I/O; the caller holds the store lock, except for `fetch_missing`).

Order: quarantine bad blobs; adopt missing blobs from local caches (hash-checked); download the
rest (bounded concurrency, resumable, verified; the aiohttp modules are imported only here, and
only when something must be downloaded); probe the link mode once per target dir; place each
file by temp + rename, journaled right before the rename (`sync.placed`); remove stale
placements that are still exactly what sync put there (never through a symlinked folder);
write the placement record. Per-file failures are collected; once everything that could be
done is done, the worst is raised once (integrity > remote > disk/permission). A plan with
conflicts is refused before anything is changed. `fetch_missing` adopts and downloads ahead,
without the store lock (design.md section 3).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import structlog

from modelsync.atomic import fsync_dir
from modelsync.errors import (
    IntegrityError,
    ModelsyncError,
    RemoteError,
    StaleError,
    UsageError,
)
from modelsync.fetch.preflight import check_free_space, free_bytes, human_bytes
from modelsync.fetch.progress import NoProgress, ProgressSink
from modelsync.fetch.retry import RetryPolicy
from modelsync.store.blobs import BlobStore
from modelsync.store.locking import unguarded
from modelsync.sync.gitignore import ignore_first_sync
from modelsync.sync.link import place, probe, unlink_placed
from modelsync.sync.model import (
    Applied,
    Fetched,
    FetchStep,
    Inventory,
    LinkMode,
    Placement,
    PlaceReason,
    SyncPlan,
)
from modelsync.sync.placed import Journal, record_path, write_record

log = structlog.get_logger(__name__)

ProgressFactory = Callable[[int], AbstractContextManager[ProgressSink]]
"""Given the bytes to download, a context manager yielding the sink that shows progress."""


@contextlib.contextmanager
def no_progress(_total: int) -> Iterator[ProgressSink]:
    """The default progress factory: silent."""
    yield NoProgress()


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    """How to apply: downloads, credentials, progress."""

    jobs: int = 4
    offline: bool = False
    tokens: Mapping[str, str] = field(default_factory=dict)
    """Origin (`scheme://host:port`) → bearer token; never logged."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    progress: ProgressFactory = no_progress
    gitignore: bool = True
    """settings.gitignore: write `<target>/.gitignore` on the first sync there."""
    admit: Callable[[], AbstractAsyncContextManager[None]] = unguarded
    """Held to adopt and around each downloaded blob's rename: the store lock where the
    caller does not hold it (`fetch_missing`)."""
    wait: bool = True
    """Wait for another run's download of a blob this one needs (False: `--no-wait`)."""


@dataclass(slots=True)
class _Failures:
    errors: list[ModelsyncError] = field(default_factory=list)

    def add(self, error: ModelsyncError) -> None:
        self.errors.append(error)

    def raise_worst(self) -> None:
        if not self.errors:
            return
        worst = max(self.errors, key=_severity)
        if len(self.errors) > 1:
            worst.message = f"{worst.message} (and {len(self.errors) - 1} more problems)"
        raise worst


def _severity(error: ModelsyncError) -> tuple[int, int]:
    order = (IntegrityError, RemoteError, UsageError, StaleError)
    rank = next((len(order) - i for i, kind in enumerate(order) if isinstance(error, kind)), 0)
    return rank, int(error.exit_code)


async def apply_plan(
    plan: SyncPlan,
    inventory: Inventory,
    blobs: BlobStore,
    record: dict[str, Placement],
    options: ApplyOptions,
    *,
    ahead: Fetched | None = None,
) -> Applied:
    """Do what `plan` says; `record` (the target dir's placements) is updated and written.

    `ahead` is what `fetch_missing` did: its failures are not tried again here."""
    if plan.conflicts:
        # Refused before any change: removing the previous quant's file and then stopping at
        # the user's file in the new one's place would leave the model folder empty.
        raise conflict_error(plan)
    ahead = ahead or Fetched()
    failures = _Failures()
    for bad in plan.bad_blobs:
        kept = blobs.quarantine(bad.sha256)
        log.warning("blob_bad", blob=bad.sha256, found=bad.found, quarantined=str(kept))
    failures.errors.extend(ahead.failed[s.sha256] for s in plan.fetch if s.sha256 in ahead.failed)
    todo = tuple(s for s in plan.fetch if s.sha256 not in ahead.failed)
    adopted = _adopt(todo, blobs)
    adopted_shas = {sha for sha, _label, _src in adopted}
    remaining = tuple(s for s in todo if s.sha256 not in adopted_shas)
    failed: dict[str, ModelsyncError] = {}
    # Under the store lock, never wait for another run's download of a blob (one that went
    # since `fetch_missing`): that run needs the lock to admit it, so both would wait forever.
    hurried = replace(options, wait=False)
    fetched, bytes_fetched, seconds, resumed = await _download(remaining, blobs, hurried, failed)
    failures.errors.extend(failed.values())
    modes: dict[str, str] = {}
    placed = 0
    removed: tuple[str, ...] = ()
    touched: set[Path] = set()
    where = record_path(inventory.target_root, inventory.lock)
    journal = Journal(where)
    held = {step.rel.partition("/")[0] for step in plan.place}  # models not yet placed whole
    try:
        mode = _link_mode(plan, inventory, blobs)
        if mode is not None:
            modes[str(inventory.target_root)] = mode.value
            if options.gitignore:
                ignore_first_sync(inventory.target_root)
            placed, held = _place_all(
                plan,
                mode,
                blobs=blobs,
                record=record,
                failures=failures,
                touched=touched,
                journal=journal,
            )
        removed = _remove_all(plan, inventory.target_root, record, touched, blobs, held=held)
        for change in plan.record:
            if change.placement is None:
                record.pop(change.rel, None)
                log.info("record_forget", file=change.rel, note=change.note)
            else:
                record[change.rel] = change.placement
    finally:
        journal.close()
        try:
            write_record(where, inventory.lock, record, mode_used(modes, inventory))
        except OSError as err:
            failures.add(
                UsageError(
                    f"{where}: cannot write the record of placed files: {err.strerror or err}",
                    hint="make the target dir writable, then run `modelsync sync` again",
                )
            )
        for folder in sorted(touched):
            if folder.exists():
                fsync_dir(folder)
    failures.raise_worst()
    before = ahead.applied
    return Applied(
        fetched=before.fetched + fetched,
        bytes_fetched=before.bytes_fetched + bytes_fetched,
        fetch_seconds=before.fetch_seconds + seconds,
        adopted=before.adopted + tuple((label, src) for _sha, label, src in adopted),
        bytes_adopted=before.bytes_adopted
        + sum(s.size for s in plan.fetch if s.sha256 in adopted_shas),
        resumed=before.resumed + resumed,
        placed=placed,
        removed=removed,
        link_modes=modes,
    )


async def fetch_missing(
    plan: SyncPlan, inventory: Inventory, blobs: BlobStore, options: ApplyOptions
) -> Fetched:
    """Adopt or download the blobs `plan` lacks while the caller holds no store lock: only
    adoption and each blob's admission take `options.admit`, so a slow download blocks no other
    run. Blobs found bad are left to `apply_plan`, which quarantines them first."""
    bad = {b.sha256 for b in plan.bad_blobs}
    steps = tuple(s for s in plan.fetch if s.sha256 not in bad)
    async with options.admit():
        adopted = _adopt(steps, blobs)
    adopted_shas = {sha for sha, _label, _src in adopted}
    failed: dict[str, ModelsyncError] = {}
    remaining = tuple(s for s in steps if s.sha256 not in adopted_shas)
    fetched, bytes_fetched, seconds, resumed = await _download(remaining, blobs, options, failed)
    applied = Applied(
        fetched=fetched,
        bytes_fetched=bytes_fetched,
        fetch_seconds=seconds,
        adopted=tuple((label, src) for _sha, label, src in adopted),
        bytes_adopted=sum(s.size for s in steps if s.sha256 in adopted_shas),
        resumed=resumed,
    )
    return Fetched(applied, failed)


def _place_all(
    plan: SyncPlan,
    mode: LinkMode,
    *,
    blobs: BlobStore,
    record: dict[str, Placement],
    failures: _Failures,
    touched: set[Path],
    journal: Journal,
) -> tuple[int, set[str]]:
    """Place every file whose blob is in the store, journaling each before its rename;
    returns how many were placed and the models not placed whole.

    In a model with a missing blob (its download failed; that error is already collected),
    no file replaces an outdated one: the old set stays whole instead of mixing two revisions
    (split shards); its new paths, relinks and repairs are placed."""
    placed = 0
    held = {s.rel.partition("/")[0] for s in plan.place if blobs.stat(s.sha256) is None}
    for step in plan.place:
        if blobs.stat(step.sha256) is None:
            continue
        if step.reason is PlaceReason.OUTDATED and step.rel.partition("/")[0] in held:
            continue
        old = record.get(step.rel)
        try:
            before_rename = partial(journal.add, step.rel, step.sha256, mode)
            with blobs.relinking(step.sha256, *([old.sha256] if old else [])):
                place(blobs.path(step.sha256), step.target, mode, before_rename)
            st = os.lstat(step.target)
        except OSError as err:
            failures.add(_place_error(step.rel, step.target, err, mode))
            held.add(step.rel.partition("/")[0])
            continue
        record[step.rel] = Placement(step.sha256, st.st_size, mode, st.st_ino, st.st_mtime_ns)
        if mode in (LinkMode.COPY, LinkMode.REFLINK):
            blobs.state.record(step.target, step.target.stat(), step.sha256)
        touched.add(step.target.parent)
        placed += 1
        log.debug("placed", file=step.rel, mode=mode.value, reason=step.reason.value)
    return placed, held


def _remove_all(
    plan: SyncPlan,
    root: Path,
    record: dict[str, Placement],
    touched: set[Path],
    blobs: BlobStore,
    *,
    held: set[str],
) -> tuple[str, ...]:
    """Remove the stale placements still as sync left them; returns those that went.

    A model in `held` (its new files are not all placed: a download failed) keeps its old ones,
    and their record entries, until a later sync has placed the new: switching quants never
    leaves the model folder empty."""
    removed = []
    for removal in plan.remove:
        if removal.rel.partition("/")[0] in held:
            log.info("removal_held", file=removal.rel, reason="the model's new files are missing")
            continue
        with blobs.relinking(removal.placement.sha256):
            gone = _remove(removal.target, removal.placement, root)
        if gone:
            removed.append(removal.rel)
            touched.add(removal.target.parent)
            log.info("removed_stale", file=removal.rel)
        record.pop(removal.rel, None)
    return tuple(removed)


def mode_used(modes: Mapping[str, str], inventory: Inventory) -> LinkMode | None:
    """The mode this run used in the target dir, else the one recorded before."""
    used = modes.get(str(inventory.target_root))
    return LinkMode(used) if used else inventory.recorded_mode


def _adopt(steps: tuple[FetchStep, ...], blobs: BlobStore) -> list[tuple[str, str, str]]:
    """Blobs taken from the local files the plan names instead of the network:
    (sha256, label, source)."""
    adopted = []
    for step in steps:
        for candidate in step.adopt:
            if blobs.adopt(candidate.path, step.sha256, step.size) is not None:
                log.info(
                    "adopted",
                    file=step.label,
                    source=candidate.source,
                    path=str(candidate.path),
                    bytes=step.size,
                )
                adopted.append((step.sha256, step.label, candidate.source))
                break
    return adopted


async def _download(
    steps: tuple[FetchStep, ...],
    blobs: BlobStore,
    options: ApplyOptions,
    failed: dict[str, ModelsyncError],
) -> tuple[int, int, float, tuple[tuple[str, int], ...]]:
    """Download the blobs still missing; returns (files admitted, bytes received, seconds, and
    the label and reused bytes of each download continued from an earlier run's partial) and
    puts each failure in `failed` by sha256."""
    if not steps:
        return 0, 0, 0.0, ()
    if options.offline:
        listed = ", ".join(f"{s.label} ({human_bytes(s.size)})" for s in steps)
        raise RemoteError(
            f"--offline: {len(steps)} files are in no local cache and must be downloaded: {listed}",
            hint="run `modelsync sync` without --offline (and without HF_HUB_OFFLINE=1)",
        )
    needed = sum(s.size for s in steps)
    held = sum(s.resume_from for s in steps)  # partial downloads hold these already
    root = blobs.layout.root
    check_free_space(needed=needed - held, free=free_bytes(root), where=root, held=held)
    # Imported here so that a sync with nothing to download never loads aiohttp.
    from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_each  # noqa: PLC0415
    from modelsync.fetch.session import Credentials, create_session  # noqa: PLC0415

    started = time.monotonic()
    results: list[FetchResult] = []
    with options.progress(needed) as sink:
        async with create_session(connections=max(options.jobs, 1) * 2) as session:
            fetcher = Fetcher(
                session=session,
                layout=blobs.layout,
                credentials=Credentials(dict(options.tokens)),
                policy=options.retry,
                progress=sink,
                fsync=not blobs.state.defers_fsync,
                admit=options.admit,
                wait=options.wait,
            )
            items = [FetchItem(s.url, s.size, s.sha256, s.label) for s in steps]
            outcomes = await fetch_each(fetcher, items, jobs=options.jobs)
    for step, outcome in zip(steps, outcomes, strict=True):
        if isinstance(outcome, FetchResult):
            blobs.remember(step.sha256, on_disk=not blobs.state.defers_fsync)
            results.append(outcome)
        elif isinstance(outcome, ModelsyncError):
            failed[step.sha256] = outcome
        elif isinstance(outcome, OSError):
            failed[step.sha256] = UsageError(
                f"{blobs.layout.root}: cannot write {step.label} into the store: "
                f"{outcome.strerror or outcome}",
                hint="free space or fix permissions there (`modelsync gc`), or pass --store",
            )
        else:
            raise outcome
    resumed = tuple((r.item.label, r.resumed_from) for r in results if r.resumed_from)
    fetched = sum(r.admitted for r in results)
    return fetched, sum(r.received for r in results), time.monotonic() - started, resumed


def _link_mode(plan: SyncPlan, inventory: Inventory, blobs: BlobStore) -> LinkMode | None:
    """The forced mode, else the best mode probed once for this target dir."""
    if not plan.place:
        return None
    if plan.link is not None:
        log.info("link_mode", target=str(inventory.target_root), mode=plan.link.value, forced=True)
        return plan.link
    for step in plan.place:
        blob = blobs.path(step.sha256)
        if blobs.stat(step.sha256) is None:
            continue
        try:
            with blobs.relinking(step.sha256):  # the probe may hardlink it for a moment
                mode = probe(blob, inventory.target_root)
        except OSError as err:
            raise _dir_error(inventory.target_root, err) from err
        log.info("link_mode", target=str(inventory.target_root), mode=mode.value, forced=False)
        return mode
    return None


def _dir_error(folder: Path, err: OSError) -> UsageError:
    return UsageError(
        f"{folder}: cannot create files there: {err.strerror or err}; nothing was placed",
        hint="make the target dir writable and free space on its disk (or change settings.target)",
    )


def _place_error(rel: str, target: Path, err: OSError, mode: LinkMode) -> UsageError:
    hint = "make the target dir writable and free space on its disk, then run `modelsync sync`"
    if mode is not LinkMode.COPY:
        hint += f" (or pass --link copy if {mode.value}s cannot be made there)"
    return UsageError(f"{target}: cannot place {rel}: {err.strerror or err}", hint=hint)


def _remove(target: Path, placement: Placement, root: Path) -> bool:
    """Unlink a stale placement if stat() still sees what sync placed; prune empty folders.
    One behind a symlinked folder (or that cannot be removed) is left alone, with a warning."""
    try:
        return unlink_placed(root, target, (placement.size, placement.inode, placement.mtime_ns))
    except OSError as err:
        log.warning("stale_kept", file=str(target), error=err.strerror or str(err))
        return False


def conflict_error(plan: SyncPlan) -> StaleError:
    parts = []
    for c in plan.conflicts:
        how = "changed since modelsync placed it" if c.modified else "not placed by modelsync"
        parts.append(
            f"{c.target} ({how}: expected {c.size} bytes, sha256 {c.sha256}; found {c.found})"
        )
    return StaleError(
        f"{len(parts)} target files hold other bytes than models.lock and were not overwritten: "
        + "; ".join(parts),
        hint="move your files away, or run `modelsync sync --repair` to replace them",
    )
