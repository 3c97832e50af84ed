"""`modelsync lock`: models.toml → registries → choices → models.lock (or `--check`, offline).

Wiring only: the manifest, the profiles, the resolution driver (`lock.driver`) and the lockfile
renderer meet here. Existing pins are kept unless upgrading or the model's manifest entry changed
(like uv): a model whose inputs digest matches its locked entries costs no request at all. The
lock is written once, at the end, and only if its bytes change; any failure writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelsync import paths
from modelsync.errors import StaleError, UsageError
from modelsync.hardware.detect import detect
from modelsync.hardware.model import Detector
from modelsync.lock.driver import DEFAULT_JOBS, resolve_models
from modelsync.lock.profiles import locked_profile, target_profiles
from modelsync.lock.steps import ModelOutcome, locked_commit, reused
from modelsync.lockfile.diff import ModelChange, diff_model
from modelsync.lockfile.freshness import freshness
from modelsync.lockfile.io import read_lock, write_lock
from modelsync.lockfile.model import LOCK_VERSION, LockedProfile, Lockfile
from modelsync.lockfile.render import render_lock
from modelsync.log import get_logger
from modelsync.manifest.load import load_manifest
from modelsync.net.retry import RetryPolicy
from modelsync.ops.project import origin_of, origins, profile_names
from modelsync.rules import HF_ENDPOINT_ENV
from modelsync.store.locking import project_lock

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LockRequest:
    """What the user asked `lock` for."""

    manifest: Path
    check: bool = False
    upgrade: bool = False
    upgrade_models: tuple[str, ...] = ()
    profile: str | None = None
    explain: bool = False
    offline: bool = False
    jobs: int = DEFAULT_JOBS
    environ: Mapping[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    detector: Detector = detect
    store: Path | None = None
    """Where the project lock lives; None: the caller holds it already (`sync`'s re-lock)."""
    wait: bool = True
    wait_timeout: float | None = None


@dataclass(frozen=True, slots=True)
class LockReport:
    """The result of `lock` (or `lock --check`)."""

    lock_path: Path
    written: bool
    models: tuple[ModelOutcome, ...] = ()
    profiles: tuple[LockedProfile, ...] = ()
    requests: int = 0
    seconds: float = 0.0
    checked: bool = False
    changes: tuple[ModelChange, ...] = ()
    """The models whose entries differ from the lock this one replaced (`lock --upgrade`
    names what moved)."""


async def lock_project(request: LockRequest) -> LockReport:
    """Run `lock` as asked, under the project lock (not for `--check`, which only reads);
    raises ModelsyncError subclasses (exit codes in errors.py)."""
    if request.store is None or request.check:
        return await _lock(request)
    with project_lock(
        request.store, request.manifest, wait=request.wait, wait_s=request.wait_timeout
    ):
        return await _lock(request)


async def _lock(request: LockRequest) -> LockReport:
    started = time.monotonic()
    project = load_manifest(request.manifest, hub_endpoint=request.environ.get(HF_ENDPOINT_ENV))
    lock_path = paths.lock_path_for(request.manifest)
    existing = read_lock(lock_path)
    digest = project.digest()
    if request.check:
        verdict = freshness(existing, digest, origins(project), profile_names(project))
        if not verdict:
            raise StaleError(
                f"{lock_path} is stale: {verdict.reason}", hint="run `modelsync lock` and commit it"
            )
        return LockReport(lock_path=lock_path, written=False, checked=True)
    unknown = sorted(set(request.upgrade_models) - {m.name for m in project.models})
    if unknown:
        raise UsageError(
            f"--upgrade-model {', '.join(unknown)}: no such model in {request.manifest}",
            hint=f"models: {', '.join(m.name for m in project.models) or 'none'}",
        )
    profiles = target_profiles(project, request.profile, request.detector)
    kept: dict[str, ModelOutcome] = {}
    pins: dict[str, str] = {}  # the locked commits that models resolved again keep
    for model in project.models:
        if existing is None or request.upgrade or model.name in request.upgrade_models:
            continue
        outcome = None if request.explain else reused(existing, model, profiles, origin_of(model))
        if outcome is not None:
            kept[model.name] = outcome
        elif (commit := locked_commit(existing, model)) is not None:
            pins[model.name] = commit
    resolved, requests = await resolve_models(
        [m for m in project.models if m.name not in kept],
        profiles,
        pins,
        environ=request.environ,
        retry=request.retry,
        jobs=request.jobs,
        offline=request.offline,
    )
    found = kept | {o.name: o for o in resolved}
    outcomes = [found[m.name] for m in project.models]
    lock = Lockfile(
        version=LOCK_VERSION,
        manifest_digest=digest,
        profiles=tuple(locked_profile(p) for p in profiles if p.source == "declared"),
        models=tuple(e for o in outcomes for e in o.entries),
    )
    written = write_lock(lock_path, render_lock(lock))
    seconds = time.monotonic() - started
    log.info(
        "lock.written" if written else "lock.unchanged",
        path=str(lock_path),
        models=len(outcomes),
        resolved=len(resolved),
        requests=requests,
        seconds=round(seconds, 3),
    )
    changes = [
        diff_model(existing.entries(o.name), o.entries)
        for o in resolved
        if existing is not None and existing.entries(o.name)
    ]
    return LockReport(
        lock_path,
        written,
        tuple(outcomes),
        lock.profiles,
        requests,
        seconds,
        changes=tuple(c for c in changes if c),
    )
