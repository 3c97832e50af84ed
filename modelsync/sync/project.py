"""One project as sync, status and verify see it: manifest, lock, profile, wanted files.

Reads `models.toml` and `models.lock` (no network); detects the hardware only when the lock
holds per-profile entries and no `--profile` was given (detection runs `nvidia-smi` and reads
/proc and /sys: worth skipping on the no-change path).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelsync import paths
from modelsync.errors import LockfileError
from modelsync.hardware.model import HardwareProfile
from modelsync.lockfile.freshness import Freshness, freshness
from modelsync.lockfile.io import read_lock
from modelsync.lockfile.model import LockedModel, Lockfile
from modelsync.lockfile.render import locate
from modelsync.manifest.load import load_manifest
from modelsync.manifest.model import Project
from modelsync.store import roots
from modelsync.store.blobs import BlobStore
from modelsync.sync.desired import (
    MachineSize,
    ProfileChoice,
    choose_profile,
    hub_source,
    profile_specific,
    select_models,
    token_for,
    wanted_files,
)
from modelsync.sync.inventory import take_inventory
from modelsync.sync.model import Inventory, LinkMode, Placement, Source, Wanted
from modelsync.sync.placed import read_record, record_path

Detector = Callable[[], HardwareProfile]


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


def no_lock_error(lock_path: Path) -> LockfileError:
    """The error for a command that needs an existing lock."""
    return LockfileError(
        f"{lock_path}: not found",
        hint="run `modelsync lock` (or `modelsync sync` without --frozen)",
    )


def load(manifest: Path) -> Loaded:
    """Read the manifest and the lock beside it; a malformed lock stops here (exit 2)."""
    project = load_manifest(manifest)
    lock_path = paths.lock_path_for(manifest)
    lock = read_lock(lock_path)
    verdict = freshness(lock, project.digest(), tuple(m.name for m in project.models))
    return Loaded(manifest, project, lock_path, lock, verdict)


def target_root(manifest: Path, project: Project) -> Path:
    """settings.target, relative to the manifest's folder, as an absolute path."""
    folder = Path(os.path.normpath(manifest.absolute())).parent
    return Path(os.path.normpath(folder / project.settings.target))


def sources(project: Project, environ: Mapping[str, str]) -> dict[str, Source]:
    """Every registry of the manifest as a download source."""
    found = {}
    for name, ref in project.registries.items():
        if ref.type == "huggingface":
            found[name] = hub_source(name, ref.endpoint, ref.token_env, environ)
        else:
            found[name] = Source(name, ref.endpoint, ref.token_env)
    return found


def tokens(wanted_sources: Sequence[Source], environ: Mapping[str, str]) -> dict[str, str]:
    """Endpoint → token for the sources that have one in the environment."""
    found = {}
    for source in wanted_sources:
        token = token_for(source, environ)
        if token and source.endpoint:
            found[source.endpoint] = token
    return found


def _machine(detector: Detector | None) -> MachineSize:
    if detector is None:
        from modelsync.hardware.detect import detect  # noqa: PLC0415  only when it matters

        detector = detect
    profile = detector()
    return MachineSize(profile.fingerprint(), profile.ram_total, profile.vram_total)


class Selection(Protocol):
    """The part of a sync, status or verify request that picks the profile and models."""

    @property
    def profile(self) -> str | None:
        """`--profile`, or None to choose by the machine."""

    @property
    def models(self) -> tuple[str, ...]:
        """`--model` names; empty: all."""

    @property
    def environ(self) -> Mapping[str, str]:
        """Where registry tokens are read from."""

    @property
    def detector(self) -> Detector | None:
        """Hardware detection (tests pass a fixed profile)."""


def context_for(loaded: Loaded, lock: Lockfile, request: Selection) -> SyncContext:
    """`context` with the selection a request carries."""
    return context(
        loaded,
        lock,
        profile=request.profile,
        models=request.models,
        environ=request.environ,
        detector=request.detector,
    )


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


def context(
    loaded: Loaded,
    lock: Lockfile,
    *,
    profile: str | None,
    models: Sequence[str],
    environ: Mapping[str, str],
    detector: Detector | None = None,
) -> SyncContext:
    """Choose the profile and list every wanted file (validating each target path)."""
    machine = None
    if profile is None and len(lock.profiles) > 1 and profile_specific(lock):
        machine = _machine(detector)
    choice = choose_profile(lock, profile, machine)
    chosen = select_models(lock, choice.name, models)
    root = target_root(loaded.manifest, loaded.project)
    found = sources(loaded.project, environ)
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
    )
