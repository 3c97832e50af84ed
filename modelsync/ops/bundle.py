"""`modelsync export --bundle PATH` and `modelsync import BUNDLE`: a lock's blobs across an
air gap.

Export plans from the lock and the store (every blob present and matching, else nothing is
written), then writes the bundle (bundle/write.py). Import never touches the network: it
reads the bundle's index and lock, and admits each listed blob through the store's admission
(`BlobStore.admit_stream`: copied into `tmp/` while hashed, renamed into `blobs/` under the
store lock only when its size and SHA-256 are the lock's). Each blob is all or nothing: a
damaged one is refused by name and the others still enter. The bundle's lock becomes a root
of the store (`roots.register_import`), so a `gc` before the `sync --offline` that places the
blobs keeps them; that sync registers the project's lock and the import's hold ends.
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from modelsync.bundle.model import (
    INDEX,
    LOCK,
    BundleBlob,
    BundleIndex,
    Refusal,
    check_listing,
    make_index,
    parse_index,
    render_index,
)
from modelsync.bundle.read import Bundle, Refused, open_bundle
from modelsync.bundle.write import Source, Written, write_dir, write_tar
from modelsync.errors import IntegrityError, StaleError, UsageError
from modelsync.fetch.preflight import check_free_space, free_bytes
from modelsync.lockfile.model import LockedModel, Lockfile
from modelsync.lockfile.render import parse_lock
from modelsync.log import get_logger
from modelsync.ops import project as proj
from modelsync.ops.export import check_blob
from modelsync.store import roots
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive
from modelsync.store.state import open_state
from modelsync.sync.desired import choose_profile, select_models

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BundleRequest(proj.ProjectRequest):
    """`export --bundle PATH`: which models (default every one) for which profile (default
    every profile), and whether to only plan."""

    bundle: Path = Path()
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class BundlePlan:
    """What the bundle will hold."""

    path: Path
    tar: bool
    index: BundleIndex
    files: tuple[tuple[str, int], ...]
    """`model/path` and size of every locked file carried (a blob may serve several)."""


@dataclass(frozen=True, slots=True)
class BundleReport:
    """The plan, and what writing it did (None for a dry run)."""

    plan: BundlePlan
    written: Written | None
    seconds: float = 0.0


def bundle_models(
    lock: Lockfile, models: tuple[str, ...], profile: str | None
) -> tuple[LockedModel, ...]:
    """The entries a bundle carries: of `profile` when named, else of every profile, so the
    bundle syncs whichever profile the machine behind the air gap picks."""
    if profile is not None:
        choose_profile(lock, profile, None)  # an unknown profile is a usage error
        return select_models(lock, profile, models)
    select_models(lock, None, models)  # an unknown model is a usage error
    return tuple(m for m in lock.models if not models or m.name in models)


def export_bundle(request: BundleRequest) -> BundleReport:
    """Plan the bundle (refusing a stale lock or blobs the store lacks), then write it."""
    started = time.monotonic()
    loaded = proj.load(request.manifest, request.environ)
    if loaded.lock is None:
        raise proj.no_lock_error(loaded.lock_path)
    if not loaded.fresh:
        raise StaleError(
            f"{loaded.lock_path}: stale ({loaded.fresh.reason}); a bundle of it would not sync "
            "offline against this models.toml",
            hint="run `modelsync lock` (and `modelsync sync`) first",
        )
    lock_text = loaded.lock_path.read_bytes()
    lock = parse_lock(lock_text.decode("utf-8"), str(loaded.lock_path))
    models = bundle_models(lock, request.models, request.profile)
    index = make_index(lock_text, models)
    files = tuple(sorted({(f"{m.name}/{f.path}", f.size) for m in models for f in m.files}))
    plan = BundlePlan(request.bundle, request.bundle.suffix == ".tar", index, files)
    layout = StoreLayout(request.store)
    with open_state(layout.state_path) as state:
        blobs = BlobStore(layout, state)
        missing = [
            f"{m.name}/{f.path}" for m in models for f in m.files if blobs.stat(f.sha256) is None
        ]
        if missing:
            shown = ", ".join(missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            raise UsageError(
                f"export --bundle: {len(missing)} locked files are not in the store "
                f"({layout.root}): {shown}",
                hint="run `modelsync sync` first (with --profile NAME for each profile to carry)",
            )
        for m in models:
            for f in m.files:
                check_blob(blobs, m.name, f.path, f.sha256, f.size)
    if request.dry_run:
        return BundleReport(plan, None)
    sources = [Source(b.sha256, b.size, blobs.path(b.sha256)) for b in index.blobs]
    rendered = render_index(index)
    write = write_tar if plan.tar else write_dir
    written = write(request.bundle, rendered, lock_text, sources)
    seconds = time.monotonic() - started
    log.info(
        "bundle.exported",
        path=str(request.bundle),
        blobs=len(index.blobs),
        bytes=index.size,
        seconds=round(seconds, 3),
    )
    return BundleReport(plan, written, seconds)


@dataclass(frozen=True, slots=True)
class ImportRequest:
    """`import BUNDLE`: the bundle, the store, and the project's lock to compare with (None:
    not run in a project)."""

    bundle: Path
    store: Path
    project_lock: Path | None = None
    wait: bool = True
    wait_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What `import` did, blob by blob."""

    bundle: Path
    index: BundleIndex
    admitted: tuple[BundleBlob, ...]
    present: tuple[BundleBlob, ...]
    refused: tuple[Refusal, ...]
    ignored: tuple[Refusal, ...]
    """Members that are no part of a bundle: never read."""
    labels: dict[str, str] = field(default_factory=dict)
    """Blob digest → the first `model/path` of the bundled lock that pins it."""
    project_lock: Path | None = None
    same_lock: bool | None = None
    """Whether the project's models.lock holds the bundle's bytes (None: no project)."""
    seconds: float = 0.0

    @property
    def bytes_admitted(self) -> int:
        """Bytes this run put into the store."""
        return sum(b.size for b in self.admitted)

    def error(self) -> IntegrityError | None:
        """The exit-4 error when any blob was refused."""
        if not self.refused:
            return None
        first = self.refused[0]
        more = f" (and {len(self.refused) - 1} more)" if len(self.refused) > 1 else ""
        return IntegrityError(
            f"{self.bundle}: {len(self.refused)} of {len(self.index.blobs)} blobs refused: "
            f"{self.label(first.name)}: {first.reason}{more}; "
            f"{len(self.admitted) + len(self.present)} good blobs are in the store",
            hint="export the bundle again on the connected machine and import it again (what "
            "is in the store already is skipped)",
        )

    def label(self, sha256: str) -> str:
        """How a blob is named in messages: its file and digest."""
        name = self.labels.get(sha256)
        return f"{name} (sha256 {sha256[:12]})" if name else f"blob {sha256}"


def import_bundle(request: ImportRequest) -> ImportReport:
    """Admit every blob of the bundle that verifies; refuse, by name, each one that does not."""
    started = time.monotonic()
    layout = StoreLayout(request.store)
    with open_bundle(request.bundle) as bundle:
        for item in bundle.ignored:
            log.warning("bundle.ignored", member=item.name, reason=item.reason)
        index = parse_index(bundle.meta(INDEX), f"{bundle.where}: {INDEX}")
        lock_text = bundle.meta(LOCK)
        digest = hashlib.sha256(lock_text).hexdigest()
        if (digest, len(lock_text)) != (index.lock.sha256, index.lock.size):
            raise IntegrityError(
                f"{bundle.where}: {LOCK} hashes to {digest} ({len(lock_text)} bytes), "
                f"{INDEX} says {index.lock.sha256} ({index.lock.size} bytes); nothing imported",
                hint="export the bundle again on the connected machine",
            )
        lock = parse_lock(lock_text.decode("utf-8", "replace"), f"{bundle.where}: {LOCK}")
        labels: dict[str, str] = {}
        for m in lock.models:
            for f in m.files:
                labels.setdefault(f.sha256, f"{m.name}/{f.path}")
        wanted, refused = check_listing(index, lock)
        admitted: list[BundleBlob] = []
        present: list[BundleBlob] = []

        guard = functools.partial(
            exclusive, layout.lock_path, wait=request.wait, wait_s=request.wait_timeout
        )
        with open_state(layout.state_path) as state:
            blobs = BlobStore(layout, state)
            with guard():  # before any blob enters: a gc meanwhile keeps what is admitted
                roots.register_import(layout, lock_text, lock)
            for blob in wanted:
                if _present(blobs, blob):
                    present.append(blob)
                    continue
                if blobs.stat(blob.sha256) is not None:  # another size under this name: bad
                    with guard():
                        blobs.quarantine(blob.sha256)
                reason = _admit(blobs, bundle, blob, guard)
                if reason is None:
                    admitted.append(blob)
                    log.info(
                        "bundle.admitted",
                        file=labels.get(blob.sha256),
                        blob=blob.sha256,
                        bytes=blob.size,
                    )
                else:
                    refused.append(Refusal(blob.sha256, reason))
        ignored = bundle.ignored
    for item in refused:
        log.warning(
            "bundle.refused", file=labels.get(item.name), blob=item.name, reason=item.reason
        )
    same = None
    if request.project_lock is not None:
        try:
            same = request.project_lock.read_bytes() == lock_text
        except FileNotFoundError:
            same = False
    return ImportReport(
        bundle=request.bundle,
        index=index,
        admitted=tuple(admitted),
        present=tuple(present),
        refused=tuple(refused),
        ignored=ignored,
        labels=labels,
        project_lock=request.project_lock,
        same_lock=same,
        seconds=time.monotonic() - started,
    )


def _present(blobs: BlobStore, blob: BundleBlob) -> bool:
    """Whether the store holds the blob already (at its size)."""
    st = blobs.stat(blob.sha256)
    return st is not None and st.st_size == blob.size


def _admit(
    blobs: BlobStore,
    bundle: Bundle,
    blob: BundleBlob,
    guard: Callable[[], AbstractContextManager[object]],
) -> str | None:
    """Stream one blob from the bundle into the store; None when it entered, else why not."""
    try:
        with bundle.blob(blob.sha256, blob.size) as src:
            # Checked once the bundle proved it holds that size (a bundle that lies about a
            # size is refused above, not taken for a full disk): a clear exit 2, not ENOSPC.
            where = blobs.layout.root
            check_free_space(needed=blob.size, free=free_bytes(where), where=where)
            actual, read = blobs.admit_stream(src, blob.sha256, blob.size, guard=guard)
    except Refused as err:
        return err.reason
    if read < blob.size:
        return f"is cut short: {read} of {blob.size} bytes"
    if read > blob.size:
        return f"holds more than the {blob.size} bytes bundle.json says"
    if actual != blob.sha256:
        return f"its bytes hash to {actual}, not to its name"
    return None
