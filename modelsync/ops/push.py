"""`modelsync push`: upload the blobs a lock needs to a blob remote that lacks them.

Plan, then apply: the lock's blobs (every profile's, or those of `--model`), this store's
verified blobs and the remote's listing (with `--check`, less the objects whose bytes are not
their blob's) → `PushPlan`; then uploads, blobs and parts in
parallel (bounded by `jobs`), each under its `sha256/<hex>` key and visible only once whole.
A blob this store holds with other bytes than its name is never uploaded (it counts as missing
here). Nothing local changes, so no store lock is taken.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modelsync.errors import ModelsyncError, UsageError
from modelsync.log import get_logger
from modelsync.manifest.model import Project, RemoteRef
from modelsync.ops import project as proj
from modelsync.remote.plan import NeededBlob, PushPlan, plan_push
from modelsync.remote.s3 import DEFAULT_PART_SIZE, MIN_PART, S3Remote, open_remote
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state

log = get_logger(__name__)

__all__ = ["NeededBlob", "PushPlan", "PushReport", "PushRequest", "Pushed", "push_project"]


@dataclass(frozen=True, slots=True)
class PushRequest(proj.ProjectRequest):
    """What the user asked `push` for."""

    remote: str | None = None
    """`--remote NAME`; None: the first `[remotes.*]` of models.toml."""
    dry_run: bool = False
    jobs: int = 4
    """Parts (and blobs) uploaded at once."""
    part_size: int | None = None
    """Bytes per multipart part; None: the adapter's default."""
    offline: bool = False
    check: bool = False
    """`--check`: read back the objects the listing shows and replace those with other bytes."""


@dataclass(frozen=True, slots=True)
class Pushed:
    """One blob uploaded."""

    blob: NeededBlob
    sent: int
    parts_reused: int
    multipart: bool


@dataclass(frozen=True, slots=True)
class PushReport:
    """What `push` found and did."""

    remote: RemoteRef
    lock_path: Path
    plan: PushPlan
    pushed: tuple[Pushed, ...] = ()
    dry_run: bool = False
    seconds: float = 0.0

    @property
    def bytes_sent(self) -> int:
        """Bytes that went over the network in this run."""
        return sum(p.sent for p in self.pushed)


def choose_remote(project: Project, name: str | None, manifest: Path) -> RemoteRef:
    """The remote `--remote` names, else the first declared; UsageError naming the fix."""
    if not project.remotes:
        raise UsageError(
            f"{manifest}: no [remotes.NAME] declared, so there is nothing to push to",
            hint='add [remotes.team] with type = "s3" and bucket = "<bucket>" (README "Fleet")',
        )
    if name is None:
        return project.remotes[0]
    for ref in project.remotes:
        if ref.name == name:
            return ref
    known = ", ".join(r.name for r in project.remotes)
    raise UsageError(f'{manifest}: no remote named "{name}"', hint=f"use one of: {known}")


def push_project(request: PushRequest) -> PushReport:
    """Run `push` as asked; raises ModelsyncError subclasses (exit codes in errors.py)."""
    started = time.monotonic()
    if request.offline:
        raise UsageError(
            "push uploads to a remote, which --offline forbids", hint="run it without --offline"
        )
    loaded = proj.load(request.manifest, request.environ)
    if loaded.lock is None:
        raise proj.no_lock_error(loaded.lock_path)
    ref = choose_remote(loaded.project, request.remote, request.manifest)
    needed = _needed(loaded, request.models)
    remote = open_remote(ref)  # boto3 is imported here
    layout = StoreLayout(request.store)
    with open_state(layout.state_path) as state:
        blobs = BlobStore(layout, state)
        listing = remote.listing()
        if request.check:
            listing = _checked(remote, needed, listing, jobs=request.jobs)
        # Only blobs the remote lacks are read here: after a reboot the stat cache vouches for
        # nothing, and a push with everything in place must not hash the whole store.
        local = {
            b.sha256 for b in needed if listing.get(b.sha256) != b.size and _verified(blobs, b)
        }
        plan = plan_push(needed, local, listing)
        log.info(
            "push.planned",
            remote=ref.name,
            upload=len(plan.upload),
            present=len(plan.present),
            missing=len(plan.missing),
            bytes=plan.bytes_to_upload,
        )
        pushed: tuple[Pushed, ...] = ()
        if plan and not request.dry_run:
            size = request.part_size or DEFAULT_PART_SIZE
            if size < MIN_PART and any(b.size > size for b in plan.upload):
                # Accepted (S3-compatible servers differ, and tests use tiny parts), but AWS
                # refuses such an upload only at its completion, after every byte is sent.
                log.warning("push.part_size_small", remote=ref.name, bytes=size, least=MIN_PART)
            pushed = _upload(plan, blobs, remote, jobs=request.jobs, part_size=size)
    return PushReport(
        ref, loaded.lock_path, plan, pushed, request.dry_run, time.monotonic() - started
    )


def _needed(loaded: proj.Loaded, models: tuple[str, ...]) -> list[NeededBlob]:
    """Every file of every entry of the lock (all profiles: the fleet may need any), or of
    the models named."""
    assert loaded.lock is not None
    names = {m.name for m in loaded.lock.models}
    unknown = sorted(set(models) - names)
    if unknown:
        raise UsageError(
            f"{loaded.lock_path}: no model named {', '.join(unknown)}",
            hint=f"use one of: {', '.join(sorted(names))}",
        )
    return [
        NeededBlob(f.sha256, f.size, f"{m.name}/{f.path}")
        for m in loaded.lock.models
        if not models or m.name in models
        for f in m.files
    ]


def _checked(
    remote: S3Remote, needed: list[NeededBlob], listing: dict[str, int], *, jobs: int
) -> dict[str, int]:
    """`listing` without the needed blobs whose objects do not hash to their names (a size
    says nothing of the bytes): the plan then uploads them over the bad objects."""
    listed = list({b.sha256: b for b in needed if listing.get(b.sha256) == b.size}.values())
    with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="push-check") as pool:
        good = list(pool.map(lambda b: remote.hashes_to(b.sha256), listed))
    bad = {b.sha256 for b, ok in zip(listed, good, strict=True) if not ok}
    for blob in listed:
        if blob.sha256 in bad:
            log.warning("push.replacing", remote=remote.ref.name, file=blob.label, blob=blob.sha256)
    return {d: n for d, n in listing.items() if d not in bad}


def _verified(blobs: BlobStore, blob: NeededBlob) -> bool:
    """The store holds the blob with its size, and its bytes hash to its name (the stat cache
    vouches, else it is hashed now)."""
    st = blobs.stat(blob.sha256)
    if st is None or st.st_size != blob.size:
        return False
    return blobs.trusted(blob.sha256, st) or blobs.hash(blob.sha256, st) == blob.sha256


def _upload(
    plan: PushPlan, blobs: BlobStore, remote: S3Remote, *, jobs: int, part_size: int
) -> tuple[Pushed, ...]:
    """Upload every blob of the plan; a failure is collected, the others still go, and the
    worst is raised at the end."""
    jobs = max(1, jobs)
    failures: list[ModelsyncError] = []

    def one(blob: NeededBlob, parts: ThreadPoolExecutor) -> Pushed | None:
        started = time.monotonic()
        try:
            done = remote.upload(
                blobs.path(blob.sha256), blob.sha256, blob.size, part_size=part_size, pool=parts
            )
        except ModelsyncError as exc:
            failures.append(exc)
            return None
        log.info(
            "push.uploaded",
            remote=remote.ref.name,
            file=blob.label,
            blob=blob.sha256,
            bytes=done.sent,
            parts_reused=done.parts_reused,
            seconds=round(time.monotonic() - started, 3),
        )
        return Pushed(blob, done.sent, done.parts_reused, done.multipart)

    with (
        ThreadPoolExecutor(jobs, thread_name_prefix="push-part") as parts,
        ThreadPoolExecutor(jobs, thread_name_prefix="push-blob") as pool,
    ):
        results = list(pool.map(lambda b: one(b, parts), plan.upload))
    if failures:
        worst = max(failures, key=lambda e: int(e.exit_code))
        if len(failures) > 1:
            worst.message = f"{worst.message} (and {len(failures) - 1} more problems)"
        raise worst
    return tuple(r for r in results if r is not None)
