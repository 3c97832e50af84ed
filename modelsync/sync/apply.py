"""Execute a SyncPlan (I/O; the caller holds the store lock, except for `fetch_missing`).

Order: quarantine bad blobs; adopt missing blobs from local caches (hash-checked); download the
rest (bounded concurrency, resumable, verified; the aiohttp modules are imported only here, and
only when something must be downloaded); place each file by the plan's link mode (its next
one where the first placement fails), by temp + rename, journaled right before the rename
(`sync.placed`); remove stale placements that are still exactly what sync put there (never
through a symlinked folder); write the placement record. Per-file failures are collected; once
everything that could be done is done, the worst is raised once (integrity > remote >
disk/permission). A plan with conflicts is refused before anything is changed.
`fetch_missing` adopts and downloads ahead, without the store lock (design.md section 3).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from modelsync.atomic import fsync_dir
from modelsync.errors import (
    IntegrityError,
    ModelsyncError,
    RemoteError,
    StaleError,
    UsageError,
)
from modelsync.fetch.preflight import check_free_space, free_bytes
from modelsync.fetch.progress import NoProgress, ProgressSink
from modelsync.fetch.sources import MirrorFinder, no_mirrors
from modelsync.log import get_logger
from modelsync.net.retry import RetryPolicy
from modelsync.store.blobs import BlobStore
from modelsync.store.locking import unguarded
from modelsync.sync.gitignore import ignore_first_sync
from modelsync.sync.link import place, unlink_placed
from modelsync.sync.model import (
    Applied,
    Fetched,
    FetchStep,
    Inventory,
    LinkMode,
    Placement,
    PlaceReason,
    PlaceStep,
    SyncPlan,
)
from modelsync.sync.placed import Journal, record_path, write_record
from modelsync.units import human_bytes

log = get_logger(__name__)

DEFAULT_CONNECTIONS = 8
SOLO_PROBE = (4 << 20, 0.06)
"""One stream suffices when the first piece brings 4 MiB within 0.06 s (≥ 67 MiB/s: loopback or
a LAN mirror, where this 2-core machine's hashing is the limit, not the link). Loopback brings
them within 8-12 ms, up to 40 ms at load average 4 (splitting there costs 40 % at 200 MiB); a
capped link starts its other connections after 0.06 s instead of the 0.1 s needed for the
16 MiB this probe took before."""

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
    connections: int | None = None
    """Connections for one large file (parallel byte ranges); 1: one stream per file. None:
    DEFAULT_CONNECTIONS, unless the first piece shows one stream is as fast (SOLO_PROBE)."""
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
    wait_s: float | None = None
    """At most this many seconds (`--wait-timeout`); None: no limit."""
    mirrors: MirrorFinder = no_mirrors
    """The blob remotes' URLs for the blobs to download (asked only when some must be)."""


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
        log.warning("sync.blob_bad", blob=bad.sha256, found=bad.found, quarantined=str(kept))
    failures.errors.extend(ahead.failed[s.sha256] for s in plan.fetch if s.sha256 in ahead.failed)
    # Under the store lock, never wait for another run's download of a blob (one that went
    # since `fetch_missing`): that run needs the lock to admit it, so both would wait forever.
    todo = tuple(s for s in plan.fetch if s.sha256 not in ahead.failed)
    own = await _bring(todo, blobs, dataclasses.replace(options, wait=False))
    failures.errors.extend(own.failed.values())
    mode = None
    placed = 0
    removed: tuple[str, ...] = ()
    touched: set[Path] = set()
    where = record_path(inventory.target_root, inventory.lock)
    journal = Journal(where)
    try:
        # A model with a missing blob (its download failed; that error is already collected) is
        # held: no file of it replaces an outdated one, so the old set stays whole instead of
        # mixing two revisions (split shards); its new paths, relinks and repairs are placed.
        held = {s.rel.partition("/")[0] for s in plan.place if blobs.stat(s.sha256) is None}
        placing = tuple(
            s
            for s in plan.place
            if blobs.stat(s.sha256) is not None
            and not (s.reason is PlaceReason.OUTDATED and s.rel.partition("/")[0] in held)
        )
        if placing:
            if options.gitignore:
                ignore_first_sync(inventory.target_root)
            mode, placed = _place_all(
                plan,
                placing,
                inventory.target_root,
                blobs=blobs,
                record=record,
                failures=failures,
                touched=touched,
                journal=journal,
                held=held,
            )
        removed = _remove_all(plan, inventory.target_root, record, touched, blobs, held=held)
        for change in plan.record:
            if change.placement is None:
                record.pop(change.rel, None)
                log.info("sync.record_forget", file=change.rel, note=change.note)
            else:
                record[change.rel] = change.placement
    finally:
        journal.close()
        try:
            write_record(where, inventory.lock, record, mode or inventory.recorded_mode)
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
    modes = {str(inventory.target_root): mode.value} if mode else {}
    return ahead.applied + own.applied + Applied(placed=placed, removed=removed, link_modes=modes)


async def fetch_missing(
    plan: SyncPlan, inventory: Inventory, blobs: BlobStore, options: ApplyOptions
) -> Fetched:
    """Adopt or download the blobs `plan` lacks while the caller holds no store lock: only
    adoption and each blob's admission take `options.admit`, so a slow download blocks no other
    run. Blobs found bad are left to `apply_plan`, which quarantines them first."""
    bad = {b.sha256 for b in plan.bad_blobs}
    return await _bring(tuple(s for s in plan.fetch if s.sha256 not in bad), blobs, options)


async def _bring(steps: tuple[FetchStep, ...], blobs: BlobStore, options: ApplyOptions) -> Fetched:
    """Adopt the blobs local files hold (under `options.admit`), then download the rest."""
    async with options.admit():
        adopted = _adopt(steps, blobs)
    failed: dict[str, ModelsyncError] = {}
    rest = tuple(s for s in steps if s not in adopted)
    downloaded = await _download(rest, blobs, options, failed)
    return Fetched(
        dataclasses.replace(
            downloaded,
            adopted=tuple((step.label, source) for step, source in adopted.items()),
            bytes_adopted=sum(step.size for step in adopted),
        ),
        failed,
    )


def _place_all(
    plan: SyncPlan,
    steps: tuple[PlaceStep, ...],
    root: Path,
    *,
    blobs: BlobStore,
    record: dict[str, Placement],
    failures: _Failures,
    touched: set[Path],
    journal: Journal,
    held: set[str],
) -> tuple[LinkMode, int]:
    """Place `steps` by the plan's link mode, journaling each before its rename; returns the
    mode used and how many were placed. A model whose file could not be placed joins `held`.

    Until one placement works, a failure moves on to the plan's next mode (the look at the
    filesystem can be wrong: XFS without reflinks, a bind mount), and one with no mode left
    means the target dir takes no file at all; after that, a failure is that file's."""
    modes = list(plan.links)
    forced = plan.link is not None
    log.info("sync.link_mode", target=str(root), mode=modes[0].value, forced=forced)
    proven = forced  # a forced mode has nothing to fall back to
    placed = 0
    for step in steps:
        old = record.get(step.rel)
        while True:
            mode = modes[0]
            try:
                before_rename = partial(journal.add, step.rel, step.sha256, mode)
                with blobs.relinking(step.sha256, *([old.sha256] if old else [])):
                    place(blobs.path(step.sha256), step.target, mode, before_rename)
                st = os.lstat(step.target)
            except OSError as err:
                if proven:
                    failures.add(_place_error(step.rel, step.target, err, mode))
                    held.add(step.rel.partition("/")[0])
                    break
                if len(modes) == 1:
                    raise _dir_error(root, err) from err
                modes.pop(0)
                log.warning(
                    "sync.link_fallback",
                    target=str(root),
                    planned=mode.value,
                    used=modes[0].value,
                    error=err.strerror or str(err),
                )
                continue
            proven = True
            record[step.rel] = Placement(step.sha256, st.st_size, mode, st.st_ino, st.st_mtime_ns)
            if mode in (LinkMode.COPY, LinkMode.REFLINK):
                blobs.state.record(step.target, step.target.stat(), step.sha256)
            touched.add(step.target.parent)
            placed += 1
            log.debug("sync.placed", file=step.rel, mode=mode.value, reason=step.reason.value)
            break
    return modes[0], placed


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
            log.info(
                "sync.removal_held", file=removal.rel, reason="the model's new files are missing"
            )
            continue
        with blobs.relinking(removal.placement.sha256):
            gone = _remove(removal.target, removal.placement, root)
        if gone:
            removed.append(removal.rel)
            touched.add(removal.target.parent)
            log.info("sync.removed_stale", file=removal.rel)
        record.pop(removal.rel, None)
    return tuple(removed)


def _adopt(steps: tuple[FetchStep, ...], blobs: BlobStore) -> dict[FetchStep, str]:
    """Blobs taken from the local files the plan names instead of the network, and which
    cache each came from."""
    adopted = {}
    for step in steps:
        for candidate in step.adopt:
            if blobs.adopt(candidate.path, step.sha256, step.size) is not None:
                log.info(
                    "sync.adopted",
                    file=step.label,
                    source=candidate.source,
                    path=str(candidate.path),
                    bytes=step.size,
                )
                adopted[step] = candidate.source
                break
    return adopted


async def _download(
    steps: tuple[FetchStep, ...],
    blobs: BlobStore,
    options: ApplyOptions,
    failed: dict[str, ModelsyncError],
) -> Applied:
    """Download the blobs still missing: files admitted, bytes received, seconds, and the label
    and reused bytes of each download continued from an earlier run's partial; each failure
    goes into `failed` by sha256."""
    if not steps:
        return Applied()
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
    from modelsync.net.session import Credentials, create_session  # noqa: PLC0415

    started = time.monotonic()
    results: list[FetchResult] = []
    found = options.mirrors([s.sha256 for s in steps])
    with options.progress(needed) as sink:
        per_file = max(options.connections or DEFAULT_CONNECTIONS, 2)
        async with create_session(connections=max(options.jobs, 1) * per_file) as session:
            fetcher = Fetcher(
                session=session,
                layout=blobs.layout,
                credentials=Credentials(dict(options.tokens)),
                policy=options.retry,
                progress=sink,
                fsync=not blobs.state.defers_fsync,
                admit=options.admit,
                wait=options.wait,
                wait_s=options.wait_s,
                connections=max(options.connections or DEFAULT_CONNECTIONS, 1),
                # Without an explicit --connections, a first piece as fast as loopback keeps the
                # file on one stream: splitting cost 20 % there (CONTRIBUTING.md, benchmarks).
                solo_probe=SOLO_PROBE if options.connections is None else None,
            )
            items = [
                FetchItem(s.url, s.size, s.sha256, s.label, found.get(s.sha256, ())) for s in steps
            ]
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
    return Applied(
        fetched=sum(r.admitted for r in results),
        bytes_fetched=sum(r.received for r in results),
        from_remotes=tuple((r.item.label, r.remote) for r in results if r.remote),
        fetch_seconds=time.monotonic() - started,
        resumed=tuple((r.item.label, r.resumed_from) for r in results if r.resumed_from),
    )


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
        log.warning("sync.stale_kept", file=str(target), error=err.strerror or str(err))
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
