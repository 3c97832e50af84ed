"""One project as sync, status and verify see it: manifest, lock, profile, wanted files.

Reads `models.toml` and `models.lock` (no network); detects the hardware only when the lock
holds per-profile entries and no `--profile` was given, or for sync's fit check (detection runs
`nvidia-smi` and reads /proc and /sys: worth skipping where nothing needs it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelsync import paths
from modelsync.credentials import grant
from modelsync.errors import LockfileError, UsageError
from modelsync.lockfile.freshness import Freshness, Origin, freshness
from modelsync.lockfile.io import read_lock
from modelsync.lockfile.model import LockedModel, Lockfile
from modelsync.manifest.load import load_manifest
from modelsync.manifest.model import ModelRequest, Project
from modelsync.rules import DEFAULT_OLLAMA_ENDPOINT, HF_ENDPOINT_ENV, hub_endpoint
from modelsync.store import roots
from modelsync.store.blobs import BlobStore
from modelsync.sync.desired import (
    ProfileChoice,
    choose_profile,
    profile_specific,
    select_models,
    wanted_files,
)
from modelsync.sync.inventory import take_inventory
from modelsync.sync.model import Inventory, LinkMode, Placement, Source, Wanted
from modelsync.sync.placed import RECORD_DIR, read_record, record_path
from modelsync.toml_lines import locate

if TYPE_CHECKING:
    from modelsync.hardware.model import HardwareProfile

Detector = Callable[[], "HardwareProfile"]


@dataclass(frozen=True, slots=True)
class Loaded:
    """The manifest, its lock (None if there is none) and whether the lock is fresh."""

    manifest: Path
    project: Project
    lock_path: Path
    lock: Lockfile | None
    fresh: Freshness


@dataclass(frozen=True, slots=True)
class SyncContext:
    """What a sync of this project on this machine wants."""

    loaded: Loaded
    lock: Lockfile
    profile: ProfileChoice
    models: tuple[LockedModel, ...]
    wanted: tuple[Wanted, ...]
    target_root: Path
    sources: Mapping[str, Source]
    link: LinkMode | None
    """From settings.link (None: auto)."""
    hardware: HardwareProfile | None = None
    """This machine, when choosing the profile needed it detected."""


def no_lock_error(lock_path: Path) -> LockfileError:
    """The error for a command that needs an existing lock."""
    return LockfileError(
        f"{lock_path}: not found",
        hint="run `modelsync lock` (or `modelsync sync` without --frozen)",
    )


def load(manifest: Path, environ: Mapping[str, str], *, parsed: Path | None = None) -> Loaded:
    """Read the manifest (its target expanded from `environ`) and the lock beside it; a
    malformed lock stops here (exit 2). `environ` also gives `HF_ENDPOINT`, under which URL
    sources are Hub sources (as for `lock`). `parsed`: the store's folder of TOML parses
    (toml_cache.py)."""
    project = load_manifest(
        manifest, environ=environ, hub_endpoint=environ.get(HF_ENDPOINT_ENV), parsed=parsed
    )
    lock_path = paths.lock_path_for(manifest)
    lock = read_lock(lock_path, parsed=parsed)
    verdict = freshness(lock, project.digest(), origins(project), profile_names(project))
    return Loaded(manifest, project, lock_path, lock, verdict)


def origin_of(model: ModelRequest) -> Origin:
    """What every locked entry of a model must repeat (`lock` writes no revision for a URL)."""
    return Origin(
        registry=model.registry.name,
        repo=model.repo,
        url=model.url,
        revision=model.revision if model.url is None else None,
        sha256=model.sha256,
    )


def origins(project: Project) -> dict[str, Origin]:
    """Model name → origin, for `freshness`."""
    return {m.name: origin_of(m) for m in project.models}


def profile_names(project: Project) -> frozenset[str]:
    """The declared profiles' names, for `freshness`."""
    return frozenset(project.profiles)


def target_root(manifest: Path, project: Project) -> Path:
    """settings.target (expanded by `load`), relative to the manifest's folder, absolute."""
    folder = Path(os.path.normpath(manifest.absolute())).parent
    return Path(os.path.normpath(folder / project.settings.target))


def check_target(root: Path, manifest: Path, store: Path, home: str) -> None:
    """Refuse a target dir that holds more than models (a cloned project picks it): the
    filesystem root, the home folder, the project's folder or one holding it (a model named
    like the project would land inside it), or the store's folder or one inside or holding it
    (placed files would become blobs). Compared after resolving symlinks.

    A target outside the project must be new, empty, or one sync placed into before (it holds
    `.modelsync/`): a cloned project's `target = "~/.config"` with a model named `autostart`
    would otherwise put files where a desktop session runs them at login. A user who means an
    existing folder says so by creating `.modelsync/` in it, which a project file cannot."""
    where = Path(os.path.realpath(root))
    project = Path(os.path.realpath(manifest.absolute().parent))
    blobs = Path(os.path.realpath(store))
    why = None
    if where == where.parent:
        why = "the filesystem root"
    elif where == Path(os.path.realpath(home)):
        why = "your home folder"
    elif where == project:
        why = "the project's folder"
    elif where in project.parents:
        why = "a folder that holds the project"
    elif where == blobs:
        why = "the blob store"
    elif blobs in where.parents:
        why = "inside the blob store"
    elif where in blobs.parents:
        why = "a folder that holds the blob store"
    elif project not in where.parents and _foreign_folder(where):
        raise UsageError(
            f"{manifest}: settings.target is {root}, a folder outside the project that already "
            "holds files modelsync did not place",
            hint=f"set settings.target to a new or empty folder, or, if {root} is meant for "
            f"models, run `mkdir {root / RECORD_DIR}` to let sync place files there",
        )
    if why is not None:
        raise UsageError(
            f"{manifest}: settings.target is {root}, {why}; sync places files only in a "
            "folder of their own",
            hint='set settings.target to a folder for the models (the default is "models")',
        )


def _foreign_folder(folder: Path) -> bool:
    """A folder with entries but no placement records: not made by or for sync."""
    try:
        with os.scandir(folder) as entries:
            names = {e.name for e in entries}
    except (FileNotFoundError, NotADirectoryError):
        return False
    return bool(names) and RECORD_DIR not in names


def sources(project: Project, environ: Mapping[str, str]) -> dict[str, Source]:
    """Every registry of the manifest as a download source."""
    found = {}
    for name, ref in project.registries.items():
        if ref.type == "huggingface":
            found[name] = Source(name, hub_endpoint(ref.endpoint, environ))
        elif ref.type == "ollama":
            found[name] = Source(name, ref.endpoint or DEFAULT_OLLAMA_ENDPOINT, "ollama")
        else:
            found[name] = Source(name, ref.endpoint)
    return found


def tokens(project: Project, used: Collection[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Endpoint → token for the registries in `used`, by the one rule of `credentials`."""
    found = {}
    for name in sorted(used):
        ref = project.registries[name]
        access = grant(name, ref.type, ref.endpoint, ref.token_env, environ)
        if access.token and access.endpoint:
            found[access.endpoint] = access.token
    return found


def detect_hardware(detector: Detector | None) -> HardwareProfile:
    """This machine's profile (`detector` None: the real detection)."""
    if detector is None:
        from modelsync.hardware.detect import detect  # noqa: PLC0415  only when it matters

        detector = detect
    return detector()


@dataclass(frozen=True, slots=True)
class ProjectRequest:
    """What every sync, status or verify request names: the project, the store, and the
    profile and models to look at."""

    manifest: Path
    store: Path
    models: tuple[str, ...] = ()
    """`--model` names; empty: all."""
    profile: str | None = None
    """`--profile`, or None to choose by the machine."""
    environ: Mapping[str, str] = field(default_factory=dict)
    """Where the target's variables, the caches and registry tokens are read from."""
    detector: Detector | None = None
    """Hardware detection (None: this machine's)."""


def survey(
    ctx: SyncContext,
    blobs: BlobStore,
    *,
    scope: tuple[str, ...] | None,
    full: bool = False,
    environ: Mapping[str, str] | None = None,
) -> tuple[Inventory, dict[str, Placement]]:
    """The inventory of this project's targets (with what earlier syncs placed in `scope`;
    None: every model) and the placement record it was taken against; with `environ`, where
    the blobs the store lacks would come from.

    A lock whose size disagrees with a blob whose bytes hash to its name is a lock error
    (design.md section 10): the lock is wrong, and the blob, maybe another project's, stays.
    """
    lock = ctx.loaded.lock_path
    record, recorded_mode = read_record(record_path(ctx.target_root, lock))
    inventory = take_inventory(
        blobs,
        ctx.wanted,
        ctx.target_root,
        record,
        lock=lock,
        recorded_mode=recorded_mode,
        scope=scope,
        full=full,
        registered=roots.is_registered(blobs.layout, lock, ctx.target_root),
        environ=environ,
    )
    for item in ctx.wanted:
        blob = inventory.blobs[item.sha256]
        if blob.ok and blob.stat is not None and blob.stat.size != item.size:
            raise _lock_disagrees(ctx, item, blob.stat.size, blobs.path(item.sha256))
    return inventory, record


def _lock_disagrees(ctx: SyncContext, item: Wanted, size: int, blob: Path) -> LockfileError:
    lock_path = ctx.loaded.lock_path
    entry = next(m for m in ctx.models if m.name == item.model)
    where = (
        "model",
        ctx.lock.models.index(entry),
        "file",
        [f.path for f in entry.files].index(item.path),
        "size",
    )
    try:
        line = locate(lock_path.read_text(encoding="utf-8"), where)
    except OSError:
        line = 1
    return LockfileError(
        f"{lock_path}:{line}: model {item.model}, file {item.path}: size = {item.size}, but the "
        f"store's blob {blob} holds {size} bytes that hash to its name (sha256 {item.sha256}); "
        "the blob is kept",
        hint="fix that size in models.lock (restore it from git, or `modelsync lock --upgrade` "
        "to regenerate it)",
    )


def context_for(loaded: Loaded, lock: Lockfile, request: ProjectRequest) -> SyncContext:
    """Choose the profile the request names (else by this machine) and list every wanted file
    of the models it names (validating each target path)."""
    hardware = None
    if request.profile is None and len(lock.declared) > 1 and profile_specific(lock):
        hardware = detect_hardware(request.detector)
    choice = choose_profile(lock, request.profile, hardware)
    chosen = select_models(lock, choice.name, request.models)
    root = target_root(loaded.manifest, loaded.project)
    found = sources(loaded.project, request.environ)
    link = loaded.project.settings.link
    return SyncContext(
        loaded=loaded,
        lock=lock,
        profile=choice,
        models=chosen,
        wanted=wanted_files(chosen, root, found),
        target_root=root,
        sources=found,
        link=None if link == "auto" else LinkMode(link),
        hardware=hardware,
    )
