"""What the lock asks for on this machine (pure): the profile, the models, and every file's target.

Paths from a lock are untrusted (design.md section 10): the lockfile model already refuses
absolute paths, `..`, backslashes and control characters in file paths; model names are checked
here, and every target must stay inside the target dir after normalization, all before any write.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelsync.errors import LockfileError, UsageError
from modelsync.lockfile.model import LockedModel, LockedProfile, Lockfile
from modelsync.rules import (
    hub_file_url,
    is_commit_id,
    is_ollama_repo,
    is_prefixed_digest,
    is_safe_name,
    ollama_blob_url,
)
from modelsync.sync.model import Source, Wanted

if TYPE_CHECKING:
    from modelsync.hardware.model import HardwareProfile


@dataclass(frozen=True, slots=True)
class Misfit:
    """A locked choice that needs more memory than this machine has, and the way out."""

    model: str
    problem: str
    fix: str

    def line(self) -> str:
        """Problem and fix on one line."""
        return f"{self.problem}; {self.fix}"


def misfits(
    lock: Lockfile, models: Sequence[LockedModel], machine: HardwareProfile
) -> tuple[Misfit, ...]:
    """The models whose locked choice needs more memory than `machine` has: the estimate
    `lock` recorded against the GPU and RAM budgets `lock` plans with."""
    # Imported here: a lock without estimates (and a no-op sync) needs none of resolve.
    from modelsync.resolve.memory import budgets  # noqa: PLC0415
    from modelsync.resolve.model import describe, gib  # noqa: PLC0415

    limits = budgets(machine)
    usable = limits.ram if machine.unified else limits.ram + limits.gpu
    if lock.declared:
        fix = "sync a profile made for a machine like this one (--profile NAME), or declare one"
    else:
        fix = (
            "declare the machines you sync to as [profiles] in models.toml and run "
            "`modelsync lock` (or `modelsync lock --profile NAME`)"
        )
    found = []
    for model in models:
        if model.memory is None or model.memory <= usable:
            continue
        what = model.quant or f"{len(model.files)} files"
        context = f" at ctx {model.context}" if model.context else ""
        problem = (
            f"models.{model.name}: the locked {what} needs est. {gib(model.memory)}{context}; "
            f"this machine has {gib(usable)} usable ({describe(machine)})"
        )
        found.append(Misfit(model.name, problem, fix))
    return tuple(found)


@dataclass(frozen=True, slots=True)
class ProfileChoice:
    """The lock profile a sync uses, and why (said in the summary)."""

    name: str | None
    why: str


def profile_specific(lock: Lockfile) -> bool:
    """Whether any model has its own entry per profile (only then does the choice matter)."""
    return any(m.profile is not None for m in lock.models)


def choose_profile(
    lock: Lockfile, requested: str | None, machine: HardwareProfile | None
) -> ProfileChoice:
    """`requested` if the lock has it; else the profile that best fits `machine`.

    Best fit: the largest declared profile (VRAM, then RAM) that the machine covers; else, when
    none fits, the smallest. A `detected` profile of an older lock is ignored.
    """
    profiles = lock.declared
    names = [p.name for p in profiles]
    if requested is not None:
        if requested not in names:
            raise UsageError(
                f"--profile {requested}: models.lock has no such profile",
                hint=f"profiles in the lock: {', '.join(names) or 'none'}; "
                f"or run `modelsync lock --profile {requested}`",
            )
        return ProfileChoice(requested, "asked for with --profile")
    if not profiles:
        return ProfileChoice(None, "the lock names no profile")
    if len(profiles) == 1:
        return ProfileChoice(profiles[0].name, "the lock's only profile")
    if not profile_specific(lock) or machine is None:
        return ProfileChoice(names[0], "every profile has the same files")
    fits = [p for p in profiles if p.ram <= machine.ram_total and p.vram <= machine.vram_total]
    if fits:
        best = max(fits, key=_capacity)
        return ProfileChoice(
            best.name, f"the largest that fits this machine ({_describe(machine)})"
        )
    smallest = min(profiles, key=_capacity)
    return ProfileChoice(
        smallest.name, f"none fits this machine ({_describe(machine)}); the smallest"
    )


def _capacity(profile: LockedProfile) -> tuple[int, int, str]:
    return (profile.vram, profile.ram, profile.name)


def _describe(machine: HardwareProfile) -> str:
    gib = 1 << 30
    vram = f", {machine.vram_total / gib:.0f} GiB VRAM" if machine.vram_total else ""
    return f"{machine.ram_total / gib:.0f} GiB RAM{vram}"


def select_models(
    lock: Lockfile, profile: str | None, only: Sequence[str]
) -> tuple[LockedModel, ...]:
    """The entry of every model (or of `only`) for `profile`."""
    names = sorted({m.name for m in lock.models})
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise UsageError(
            f"--model {', '.join(unknown)}: not in models.lock",
            hint=f"models in the lock: {', '.join(names) or 'none'}",
        )
    chosen = []
    for name in names:
        if only and name not in only:
            continue
        entry = lock.for_profile(name, profile)
        if entry is not None:
            chosen.append(entry)
    return tuple(chosen)


def download_url(model: LockedModel, path: str, sha256: str, source: Source) -> str:
    """The Hub file URL at the locked commit (`rules.hub_file_url`), an Ollama registry's blob
    URL (by the file's digest), or the locked URL."""
    if model.url is not None:
        return model.url
    if model.repo is None or model.commit is None or source.endpoint is None:
        raise LockfileError(
            f"models.lock: model {model.name} has neither a url nor a repo and commit",
            hint="run `modelsync lock` to regenerate it",
        )
    # The lock's commit form follows the registry's type: a Hub pins a commit, an Ollama
    # registry the manifest's digest; anything else is a hand-edited lock.
    ollama = source.kind == "ollama"
    if not (is_prefixed_digest(model.commit) if ollama else is_commit_id(model.commit)) or (
        ollama and not is_ollama_repo(model.repo)
    ):
        want = '"sha256:<hex>" and repo "namespace/model"' if ollama else "a 40-hex commit"
        raise LockfileError(
            f"models.lock: model {model.name} comes from {source.kind} registry "
            f"{source.registry}, which needs {want}",
            hint="restore models.lock from git or run `modelsync lock` to regenerate it",
        )
    if ollama:
        return ollama_blob_url(source.endpoint, model.repo, sha256)
    return hub_file_url(source.endpoint, model.repo, model.commit, path)


def check_model_name(name: str) -> str:
    """A model name is one folder under the target dir: letters, digits, `.`, `_`, `-`."""
    if not is_safe_name(name):
        raise LockfileError(
            f"models.lock: model name {name!r} is not a safe folder name; refusing to write "
            "anything",
            hint="restore models.lock from git or run `modelsync lock` to regenerate it",
        )
    return name


def target_of(root: Path, model: str, path: str) -> Path:
    """`root/model/path`, refusing anything that would land outside `root` after normalization."""
    check_model_name(model)
    base = os.path.normpath(root)
    joined = os.path.normpath(f"{base}/{model}/{path}")
    if not joined.startswith(base.rstrip("/") + "/") or joined == base:
        raise LockfileError(
            f"models.lock: {model}/{path} would be written outside {root}; refusing to write "
            "anything",
            hint="restore models.lock from git or run `modelsync lock` to regenerate it",
        )
    return Path(joined)


def wanted_files(
    models: Sequence[LockedModel], root: Path, sources: Mapping[str, Source]
) -> tuple[Wanted, ...]:
    """Every file of `models` with its target and URL, sorted by target path."""
    wanted: list[Wanted] = []
    for model in models:
        source = sources.get(model.registry)
        if source is None:
            raise UsageError(
                f"models.lock: model {model.name} comes from registry {model.registry!r}, "
                "which models.toml does not declare",
                hint=f"declare [registries.{model.registry}] in models.toml or run "
                "`modelsync lock`",
            )
        wanted.extend(
            Wanted(
                model=model.name,
                path=file.path,
                size=file.size,
                sha256=file.sha256,
                target=target_of(root, model.name, file.path),
                url=download_url(model, file.path, file.sha256, source),
                registry=model.registry,
            )
            for file in model.files
        )
    targets = [w.target for w in wanted]
    if len(set(targets)) != len(targets):
        raise LockfileError(
            "models.lock: two files would be placed at the same path",
            hint="run `modelsync lock` to regenerate it",
        )
    return tuple(sorted(wanted, key=lambda w: str(w.target)))
