"""`modelsync outdated`: have the locked revisions moved upstream?

One request per model (bounded, concurrent) asks where its revision points now; a model whose
commit moved is resolved there by the same steps `lock` uses (`lock.driver.check_models`), for
the same profiles, and compared with the lock (`lockfile.diff`): the new commit and its date,
the files added, removed and changed, the size delta, and per profile whether the choice would
change. Nothing is written. Exit 3 if anything moved, 0 if not; a model that could not be
checked sets the exit code of its error (5: a registry down or refusing).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from modelsync import paths
from modelsync.errors import ExitCode, ModelsyncError, StaleError, UsageError
from modelsync.hardware.detect import detect
from modelsync.hardware.model import Detector
from modelsync.lock.driver import DEFAULT_JOBS, check_models
from modelsync.lock.profiles import target_profiles
from modelsync.lock.steps import locked_commit
from modelsync.lockfile.diff import ModelChange, diff_model
from modelsync.lockfile.freshness import freshness
from modelsync.lockfile.io import read_lock
from modelsync.manifest.load import load_manifest
from modelsync.manifest.model import ModelRequest
from modelsync.net.retry import RetryPolicy
from modelsync.ops.project import no_lock_error, origins, profile_names
from modelsync.rules import HF_ENDPOINT_ENV, is_commit_id

__all__ = ["ModelChange", "ModelStatus", "OutdatedReport", "OutdatedRequest", "check_outdated"]


@dataclass(frozen=True, slots=True)
class OutdatedRequest:
    """What the user asked `outdated` for."""

    manifest: Path
    models: tuple[str, ...] = ()
    offline: bool = False
    jobs: int = DEFAULT_JOBS
    environ: Mapping[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    detector: Detector = detect


@dataclass(frozen=True, slots=True)
class ModelStatus:
    """One model: up to date, moved (with what would change), not checked, or failed."""

    name: str
    commit: str | None
    """The locked commit."""
    upstream: str | None = None
    """The commit the revision points at now (None: not asked, or the request failed)."""
    date: datetime | None = None
    change: ModelChange | None = None
    skipped: str | None = None
    """Why no registry was asked (a plain URL, a revision that is a commit)."""
    error: ModelsyncError | None = None

    @property
    def moved(self) -> bool:
        """Whether the upstream commit differs from the locked one."""
        return self.change is not None


@dataclass(frozen=True, slots=True)
class OutdatedReport:
    """Every model checked, in manifest order."""

    lock_path: Path
    models: tuple[ModelStatus, ...]
    requests: int
    seconds: float

    @property
    def failures(self) -> tuple[ModelStatus, ...]:
        """The models whose registry could not answer (or answered an error)."""
        return tuple(m for m in self.models if m.error is not None)

    @property
    def exit_code(self) -> ExitCode:
        """The first failure's code, else 3 if anything moved, else 0."""
        if self.failures:
            error = self.failures[0].error
            assert error is not None
            return error.exit_code
        return ExitCode.STALE if any(m.moved for m in self.models) else ExitCode.OK


async def check_outdated(request: OutdatedRequest) -> OutdatedReport:
    """Run `outdated` as asked; raises ModelsyncError for bad input (no lock, a stale lock)."""
    started = time.monotonic()
    project = load_manifest(request.manifest, hub_endpoint=request.environ.get(HF_ENDPOINT_ENV))
    lock_path = paths.lock_path_for(request.manifest)
    lock = read_lock(lock_path)
    if lock is None:
        raise no_lock_error(lock_path)
    verdict = freshness(lock, project.digest(), origins(project), profile_names(project))
    if not verdict:
        # The lock does not say what models.toml asks for: comparing it with upstream would
        # answer the wrong question.
        raise StaleError(
            f"{lock_path} is stale: {verdict.reason}",
            hint="run `modelsync lock` (or `modelsync lock --upgrade`) first",
        )
    names = {m.name for m in project.models}
    unknown = sorted(set(request.models) - names)
    if unknown:
        raise UsageError(
            f"--model {', '.join(unknown)}: no such model in {request.manifest}",
            hint=f"models: {', '.join(sorted(names)) or 'none'}",
        )
    chosen = [m for m in project.models if not request.models or m.name in request.models]
    asked = [m for m in chosen if _skipped(m) is None]
    if asked and request.offline:
        raise UsageError(
            "--offline: outdated asks the registries where each revision points now",
            hint="run `modelsync outdated` without --offline (or unset HF_HUB_OFFLINE)",
        )
    profiles = target_profiles(project, None, request.detector) if asked else []
    locked = {m.name: c for m in asked if (c := locked_commit(lock, m)) is not None}
    found, requests = await check_models(
        asked,
        locked,
        profiles,
        environ=request.environ,
        retry=request.retry,
        jobs=request.jobs,
    )
    answers = {u.name: u for u in found}
    statuses = []
    for model in chosen:
        entries = lock.entries(model.name)
        commit = entries[0].commit
        why = _skipped(model)
        if why is not None:
            statuses.append(ModelStatus(model.name, commit, skipped=why))
            continue
        answer = answers[model.name]
        if answer.error is not None or answer.snapshot is None:
            statuses.append(ModelStatus(model.name, commit, error=answer.error))
            continue
        snapshot = answer.snapshot
        change = diff_model(entries, answer.outcome.entries) if answer.outcome else None
        statuses.append(
            ModelStatus(model.name, commit, snapshot.commit, snapshot.date, change=change)
        )
    return OutdatedReport(lock_path, tuple(statuses), requests, time.monotonic() - started)


def _skipped(model: ModelRequest) -> str | None:
    """Why a model cannot move: a plain URL is pinned by its SHA-256, a commit by itself."""
    if model.url is not None:
        return "a plain URL, pinned by its sha256"
    if model.revision is not None and is_commit_id(model.revision):
        return f"revision {model.revision[:7]} is a commit"
    return None
