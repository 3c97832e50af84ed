"""The machines `lock` resolves for, and how each is recorded in the lock (pure: detection is
passed in)."""

from __future__ import annotations

from modelsync.errors import UsageError
from modelsync.hardware.model import Detector, HardwareProfile, declared
from modelsync.lockfile.model import LockedProfile
from modelsync.manifest.model import Project


def target_profiles(
    project: Project, only: str | None, detector: Detector
) -> list[HardwareProfile]:
    """The declared profiles (or only `only`), else this machine's detected profile."""
    if only is not None and only not in project.profiles:
        declared_names = ", ".join(project.profiles)
        raise UsageError(
            f"--profile {only}: no [profiles.{only}] in models.toml",
            hint=f"declared profiles: {declared_names}"
            if declared_names
            else f'declare it, e.g. [profiles.{only}] ram = "16GiB"',
        )
    if not project.profiles:
        return [detector()]
    return [
        declared(name, ram=p.ram, vram=p.vram, gpus=p.gpus, unified=p.unified)
        for name, p in project.profiles.items()
        if only is None or name == only
    ]


def locked_profile(profile: HardwareProfile) -> LockedProfile:
    """How a profile is recorded in the lock."""
    return LockedProfile(
        name=profile.name,
        source=profile.source,
        fingerprint=profile.fingerprint(),
        ram=profile.ram_total,
        vram=profile.vram_total if not profile.unified else 0,
        gpus=len(profile.gpus) if not profile.unified else 0,
        unified=profile.unified,
    )
