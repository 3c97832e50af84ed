"""`modelsync hw`: the detected hardware profile and, per model, what fits and why."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelsync import paths
from modelsync.errors import UsageError
from modelsync.hardware.detect import detect
from modelsync.hardware.model import Detector, HardwareProfile
from modelsync.lock.driver import resolve_models
from modelsync.lock.steps import ModelOutcome, locked_commit
from modelsync.lockfile.io import read_lock
from modelsync.manifest.load import load_manifest
from modelsync.resolve.memory import Budgets, budgets
from modelsync.rules import HF_ENDPOINT_ENV


@dataclass(frozen=True, slots=True)
class HwRequest:
    """What the user asked `hw` for."""

    manifest: Path
    models: tuple[str, ...] = ()
    offline: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    detector: Detector = detect


@dataclass(frozen=True, slots=True)
class HwReport:
    """This machine, its budgets, and the choice tables of the models asked about."""

    profile: HardwareProfile
    budgets: Budgets
    models: tuple[ModelOutcome, ...] = ()


async def show_hardware(request: HwRequest) -> HwReport:
    """Detect this machine; with models, resolve each against it (at the locked commit if any)."""
    profile = request.detector()
    outcomes: tuple[ModelOutcome, ...] = ()
    if request.models:
        project = load_manifest(request.manifest, hub_endpoint=request.environ.get(HF_ENDPOINT_ENV))
        unknown = sorted(set(request.models) - {m.name for m in project.models})
        if unknown:
            raise UsageError(
                f"--model {', '.join(unknown)}: no such model in {request.manifest}",
                hint=f"models: {', '.join(m.name for m in project.models) or 'none'}",
            )
        existing = read_lock(paths.lock_path_for(request.manifest))
        models = [m for m in project.models if m.name in request.models]
        pins = {m.name: c for m in models if (c := locked_commit(existing, m)) is not None}
        found, _ = await resolve_models(
            models,
            [profile],
            pins,
            environ=request.environ,
            offline=request.offline,
        )
        outcomes = tuple(found)
    return HwReport(profile=profile, budgets=budgets(profile), models=outcomes)
