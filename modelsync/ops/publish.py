"""`modelsync publish`: push local or locked files to a Hub repository with a generated model
card, in one commit with only what differs (by SHA-256); nothing changed, no commit.

Every target's local side is gathered first (globs matched, files hashed through the stat
cache, locked blobs found in the store, cards rendered), so a missing file stops the run before
anything is uploaded. Then, per target: the remote listing, the pure `plan_upload`, and (not
with `--dry-run`, not when the plan is empty) `create_repo` + one `create_commit`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from modelsync import paths
from modelsync.credentials import grant
from modelsync.digest import sha256_file
from modelsync.errors import StaleError, UsageError
from modelsync.lockfile.model import LockedModel
from modelsync.log import get_logger
from modelsync.manifest.load import load_manifest
from modelsync.manifest.model import Project, PublishTarget
from modelsync.ops import project as proj
from modelsync.publish.card import (
    BENCH_NAME,
    CARD_PATH,
    BenchLine,
    CardFile,
    CardInput,
    parse_bench,
    render_card,
)
from modelsync.publish.plan import LocalFile, UploadPlan, git_blob_id, needs_git_id, plan_upload
from modelsync.publish.upload import HubClient
from modelsync.resolve.gguf import label_of_path
from modelsync.rules import HF_ENDPOINT_ENV
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.state import StateCache, open_state

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PublishRequest:
    """What `publish` was asked for."""

    manifest: Path
    store: Path
    target: str | None = None
    """`--target NAME`; None: every `[publish.*]` target."""
    dry_run: bool = False
    offline: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    detector: proj.Detector | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """One target's plan and, when it was applied, the commit made."""

    target: str
    endpoint: str
    plan: UploadPlan
    commit: str | None = None


@dataclass(frozen=True, slots=True)
class PublishReport:
    """Every target, in name order."""

    results: tuple[Published, ...]
    dry_run: bool


@dataclass(frozen=True, slots=True)
class _Gathered:
    target: PublishTarget
    files: tuple[LocalFile, ...]


def publish_project(request: PublishRequest) -> PublishReport:
    """Plan (and unless `dry_run`, apply) each target; see the module docstring."""
    environ = request.environ
    project = load_manifest(request.manifest, hub_endpoint=environ.get(HF_ENDPOINT_ENV))
    targets = _targets(project, request.manifest, request.target)
    if request.offline:
        raise UsageError(
            "publish talks to the registry, and --offline (or HF_HUB_OFFLINE=1) forbids it",
            hint="run it without --offline",
        )
    layout = StoreLayout(request.store)
    bench = _bench(request.manifest)
    with open_state(layout.state_path) as state:
        gathered = [
            _Gathered(t, _local_files(t, request, project, BlobStore(layout, state), bench))
            for t in targets
        ]
    return PublishReport(tuple(_publish(g, request) for g in gathered), request.dry_run)


def _targets(project: Project, manifest: Path, only: str | None) -> tuple[PublishTarget, ...]:
    if not project.publish:
        raise UsageError(
            f"{manifest}: no [publish.NAME] table",
            hint='add one, e.g. [publish.mirror] repo = "team/name-GGUF" files = ["out/*.gguf"]',
        )
    if only is None:
        return project.publish
    for target in project.publish:
        if target.name == only:
            return (target,)
    known = ", ".join(t.name for t in project.publish)
    raise UsageError(f"{manifest}: no [publish.{only}] table", hint=f"use one of: {known}")


def _publish(gathered: _Gathered, request: PublishRequest) -> Published:
    target = gathered.target
    registry = target.registry
    access = grant(
        registry.name, registry.type, registry.endpoint, registry.token_env, request.environ
    )
    client = HubClient(access, target.repo)
    listing = client.listing()
    remote = listing.files
    local = tuple(
        _with_git_id(f) if remote is not None and needs_git_id(f, remote) else f
        for f in gathered.files
    )
    plan = plan_upload(
        target.repo, local, remote, head=listing.head, delete_extra=target.delete_extra
    )
    bound = log.bind(target=target.name, repo=target.repo, endpoint=client.endpoint)
    if request.dry_run or not plan:
        bound.info("publish.planned", changes=bool(plan), bytes=plan.upload_bytes)
        return Published(target.name, client.endpoint, plan)
    message = (
        f"modelsync publish {target.name}: {len(plan.add)} added, {len(plan.replace)} replaced, "
        f"{len(plan.delete)} deleted"
    )
    commit = client.apply(plan, private=target.private, message=message)
    bound.info("publish.committed", commit=commit, bytes=plan.upload_bytes)
    return Published(target.name, client.endpoint, plan, commit)


def _with_git_id(item: LocalFile) -> LocalFile:
    """`item` with its git blob id (a file the same size as a regular remote one: small)."""
    if item.content is not None:
        return replace(item, git_id=git_blob_id(item.content))
    assert item.source is not None
    return replace(item, git_id=git_blob_id(item.source.read_bytes()))


def _bench(manifest: Path) -> dict[str, tuple[BenchLine, ...]]:
    path = paths.lock_path_for(manifest).with_name(BENCH_NAME)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{path}: cannot read: {err}", hint="rerun `modelsync bench`") from err
    return parse_bench(text, str(path))


def _local_files(
    target: PublishTarget,
    request: PublishRequest,
    project: Project,
    blobs: BlobStore,
    bench: Mapping[str, tuple[BenchLine, ...]],
) -> tuple[LocalFile, ...]:
    """The target's files, then its card."""
    upstream: tuple[str, str] | None = None
    base_model = target.base_model
    if target.model is not None:
        entry, files = _locked_files(target, target.model, request, blobs)
        quants = {f.path: entry.quant for f in files}
        if entry.repo and entry.commit:
            upstream = (entry.repo, entry.commit)
            base_model = base_model or entry.repo
    else:
        files = _glob_files(target, request.manifest, blobs.state)
        quants = {f.path: label_of_path(f.path) for f in files if f.path.lower().endswith(".gguf")}
    if any(f.path == CARD_PATH for f in files):
        raise UsageError(
            f"{request.manifest}: publish.{target.name}: {CARD_PATH} is generated, but the "
            "target's files include one",
            hint=f"leave {CARD_PATH} out (put your text in description)",
        )
    registry = project.registries[target.registry.name]
    card = CardInput(
        repo=target.repo,
        model=target.model or target.name,
        registry=registry.name,
        endpoint=registry.endpoint,
        files=tuple(
            CardFile(f.path, f.size, f.sha256, quants.get(f.path), bench.get(f.sha256, ()))
            for f in files
        ),
        license=target.license,
        base_model=base_model,
        tags=target.tags,
        quantized_by=target.quantized_by,
        description=target.description,
        upstream=upstream,
    )
    text = render_card(card).encode("utf-8")
    readme = LocalFile(CARD_PATH, len(text), hashlib.sha256(text).hexdigest(), content=text)
    return (*files, readme)


def _glob_files(target: PublishTarget, manifest: Path, state: StateCache) -> tuple[LocalFile, ...]:
    """The files the globs match (relative to the manifest's folder), by name at the repo's
    top level; hashed only when the stat cache does not know them."""
    folder = Path(os.path.normpath(manifest.absolute())).parent
    found: dict[str, Path] = {}
    for pattern in target.files:
        matches = sorted(p for p in folder.glob(pattern) if p.is_file())
        if not matches:
            raise UsageError(
                f'{manifest}: publish.{target.name}.files: "{pattern}" matches no file in '
                f"{folder}; nothing was uploaded",
                hint="build the files first, or fix the glob",
            )
        for path in matches:
            other = found.setdefault(path.name, path)
            if other != path:
                raise UsageError(
                    f"{manifest}: publish.{target.name}.files: {other} and {path} would both "
                    f"be {path.name} in the repository",
                    hint="narrow the globs so each file name appears once",
                )
    return tuple(_hashed(name, path, state) for name, path in sorted(found.items()))


def _hashed(name: str, path: Path, state: StateCache) -> LocalFile:
    before = path.stat()
    digest = state.lookup(path, before)
    if digest is None:
        digest = sha256_file(path)
        if _key(path.stat()) == _key(before):  # not written to while it was read
            state.record(path, before, digest)
    return LocalFile(name, before.st_size, digest, source=path)


def _key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What the stat cache keys on (reading the file may move only the atime)."""
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino


def _locked_files(
    target: PublishTarget, model: str, request: PublishRequest, blobs: BlobStore
) -> tuple[LockedModel, tuple[LocalFile, ...]]:
    """The lock's files of `model` for the profile sync would choose here, from the store's
    blobs (the lock pins their SHA-256: nothing to hash)."""
    loaded = proj.load(request.manifest, request.environ)
    if loaded.lock is None:
        raise proj.no_lock_error(loaded.lock_path)
    if not loaded.fresh.fresh:
        raise StaleError(
            f"{loaded.lock_path}: stale ({loaded.fresh.reason}), so publish.{target.name} "
            f"cannot trust its files for model {model}",
            hint="run `modelsync sync` first",
        )
    ctx = proj.context_for(
        loaded,
        loaded.lock,
        proj.ProjectRequest(
            request.manifest,
            request.store,
            models=(model,),
            environ=request.environ,
            detector=request.detector,
        ),
    )
    entry = ctx.models[0]
    files = []
    for item in entry.files:
        st = blobs.stat(item.sha256)
        if st is None or st.st_size != item.size:
            raise UsageError(
                f"publish.{target.name}: model {model}: {item.path} (sha256 {item.sha256}) is "
                f"not in the store {blobs.layout.root}; nothing was uploaded",
                hint="run `modelsync sync` first",
            )
        files.append(LocalFile(item.path, item.size, item.sha256, blobs.path(item.sha256)))
    return entry, tuple(files)
