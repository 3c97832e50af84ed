"""HardwareProfile: a machine's memory and GPUs, detected or declared, with a stable fingerprint.

The one machine value: resolve plans on it, lock records it (`lock.profiles`), sync chooses a
profile and checks the fit with it, hw shows it. models.toml's `[profiles.NAME]`
(`manifest.model.ProfileSpec`) and models.lock's `[[profile]]` (`lockfile.model.LockedProfile`)
are the file schemas it is made from and recorded as.

The fingerprint covers what decides a choice and stays the same from run to run on one
machine (totals, GPU models; never free memory, UUIDs or the profile's name), so the same
hardware always gets the same lock and bench results can be keyed by it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Vendor = Literal["nvidia", "amd", "apple", "other"]
Backend = Literal["cuda", "rocm", "metal", "vulkan"]


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU: model name, memory, and how it was found."""

    name: str
    vendor: Vendor
    vram_total: int
    vram_free: int | None = None
    backend: Backend = "cuda"
    uuid: str | None = None
    index: int = 0

    def identity(self) -> dict[str, object]:
        """What identifies this kind of GPU for the fingerprint (not its UUID or free memory)."""
        return {"name": self.name, "vendor": self.vendor, "vram": self.vram_total}


@dataclass(frozen=True, slots=True)
class HardwareProfile:
    """A machine to resolve for."""

    name: str
    source: Literal["detected", "declared"]
    ram_total: int
    """Usable RAM total: the machine's, capped by a cgroup limit."""
    ram_available: int | None = None
    ram_limit: int | None = None
    """The container's memory limit, if one is set."""
    gpus: tuple[GpuInfo, ...] = ()
    unified: bool = False
    unified_gpu_limit: int | None = None
    os: str = ""
    arch: str = ""
    cpu_count: int | None = None
    cpu_flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    """What detection could not do (no nvidia-smi, NVML failed), for `hw`."""

    def identity(self) -> dict[str, object]:
        """The fingerprinted facts."""
        return {
            "source": self.source,
            "ram": self.ram_total,
            "gpus": [g.identity() for g in self.gpus],
            "unified": self.unified,
            "unified-gpu-limit": self.unified_gpu_limit,
            "os": self.os,
            "arch": self.arch,
        }

    def fingerprint(self) -> str:
        """`sha256:<hex>` of the identity; equal machines (and equal declarations) share it."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    @property
    def vram_total(self) -> int:
        """VRAM of all GPUs together (0 without one)."""
        return sum(g.vram_total for g in self.gpus)

    @property
    def detected(self) -> bool:
        """The machine `lock` runs on (no profiles declared): its choice is kept on every other
        machine, so reasons state what the choice needs, not what this machine has."""
        return self.source == "detected"


def declared(
    name: str, *, ram: int, vram: int | None, gpus: int = 1, unified: bool = False
) -> HardwareProfile:
    """A profile from `[profiles.NAME]`: `vram` is per GPU; `unified` shares the RAM."""
    devices: tuple[GpuInfo, ...] = ()
    if unified:
        devices = (GpuInfo("declared unified GPU", "apple", vram or ram, backend="metal"),)
    elif vram:
        devices = tuple(
            GpuInfo("declared GPU", "other", vram, index=i) for i in range(max(gpus, 1))
        )
    return HardwareProfile(
        name=name,
        source="declared",
        ram_total=ram,
        gpus=devices,
        unified=unified,
        unified_gpu_limit=vram if unified else None,
    )


Detector = Callable[[], HardwareProfile]
"""Hardware detection as a value (tests pass a fixed profile)."""
