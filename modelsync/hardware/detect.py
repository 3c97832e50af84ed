"""Probe this machine: RAM (cgroup-aware), NVIDIA (NVML, else nvidia-smi), AMD (sysfs), Apple.

Every probe reads below `root` (normally `/`), so tests point it at a folder laid out like
`/proc` and `/sys`; commands run through `run`, so a test can give nvidia-smi's output. A probe
that fails adds a note and detection goes on: `hw` shows what could not be read.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import platform
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelsync.hardware.model import GpuInfo, HardwareProfile

MIB = 1 << 20
GIB = 1 << 30
DETECTED = "detected"
_NO_LIMIT = 1 << 60
_NVIDIA_SMI_QUERY = (
    "index,uuid,name,memory.total,memory.used,memory.free,memory.reserved,"
    "driver_version,compute_cap,pci.bus_id"
)
_CPU_FLAGS = frozenset(
    {
        "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
        "amx_tile", "amx_int8", "amx_bf16", "asimd", "asimddp", "i8mm", "sve", "sve2",
    }
)  # fmt: skip

Runner = Callable[[Sequence[str]], str | None]


def run_command(argv: Sequence[str]) -> str | None:
    """Run a probe command (10 s at most); its stdout, or None if missing or failed."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        done = subprocess.run(  # noqa: S603  fixed probe commands, no shell
            list(argv), capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


@dataclass(frozen=True, slots=True)
class Memory:
    """RAM facts: the machine's total and available, and a container's limit and usage."""

    total: int
    available: int | None
    limit: int | None
    usage: int | None

    @property
    def usable_total(self) -> int:
        """The total capped by the container limit."""
        return min(self.total, self.limit) if self.limit else self.total

    @property
    def usable_available(self) -> int | None:
        """Available now: min(MemAvailable, limit − usage)."""
        if self.limit is None or self.usage is None:
            return self.available
        room = max(self.limit - self.usage, 0)
        return room if self.available is None else min(self.available, room)


def detect(
    root: Path = Path("/"),
    *,
    run: Runner = run_command,
    environ: Mapping[str, str] | None = None,
    system: str | None = None,
    machine: str | None = None,
) -> HardwareProfile:
    """The profile of this machine (or of the tree at `root`, for tests)."""
    env = os.environ if environ is None else environ
    system = system or platform.system()
    arch = machine or platform.machine()
    notes: list[str] = []
    memory = read_memory(root) if system == "Linux" else None
    if memory is None:
        psutil: Any = importlib.import_module("psutil")  # no type stubs in the runtime set
        vm = psutil.virtual_memory()
        memory = Memory(total=vm.total, available=vm.available, limit=None, usage=None)
    gpus: list[GpuInfo] = []
    unified = False
    unified_limit: int | None = None
    if system == "Darwin":
        unified, unified_limit, apple = _apple(run, memory.total, arch)
        gpus.extend(apple)
    else:
        gpus.extend(_nvidia(run, env, notes))
        amd, apu = amd_gpus(root)
        gpus.extend(amd)
        unified = apu
    return HardwareProfile(
        name=DETECTED,
        source="detected",
        ram_total=memory.usable_total,
        ram_available=memory.usable_available,
        ram_limit=memory.limit,
        gpus=tuple(gpus),
        unified=unified,
        unified_gpu_limit=unified_limit,
        os=system.lower(),
        arch=arch,
        cpu_count=os.cpu_count(),
        cpu_flags=cpu_flags(root),
        notes=tuple(notes),
    )


# ---- RAM -----------------------------------------------------------------------------------


def read_memory(root: Path) -> Memory | None:
    """`/proc/meminfo` plus the cgroup (v2 or v1) limit; None where there is no meminfo."""
    info = _meminfo(root / "proc/meminfo")
    if "MemTotal" not in info:
        return None
    available = info.get("MemAvailable")
    if available is None and "MemFree" in info:
        available = info["MemFree"] + info.get("Buffers", 0) + info.get("Cached", 0)
    limit, usage = cgroup_memory(root)
    return Memory(total=info["MemTotal"], available=available, limit=limit, usage=usage)


def _meminfo(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        text = path.read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            factor = 1024 if len(fields) > 1 and fields[1].lower() == "kb" else 1
            values[key.strip()] = int(fields[0]) * factor
    return values


def cgroup_memory(root: Path) -> tuple[int | None, int | None]:
    """(limit, usage) of this process's memory cgroup; limit None when unlimited."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        lines = []
    base = root / "sys/fs/cgroup"
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        rel = rel.lstrip("/")
        if controllers == "":
            found = _cgroup_v2(base, rel)
            if found != (None, None):
                return found
        elif "memory" in controllers.split(","):
            found = _cgroup_v1(base / "memory", rel)
            if found != (None, None):
                return found
    return _cgroup_v2(base, "") if (base / "memory.max").exists() else (None, None)


def _cgroup_v2(base: Path, rel: str) -> tuple[int | None, int | None]:
    """The tightest `memory.max` from the cgroup up to the root, and its `memory.current`."""
    limit: int | None = None
    usage = _read_int(base / rel / "memory.current") if rel else _read_int(base / "memory.current")
    current = base / rel if rel else base
    while True:
        value = _read_int(current / "memory.max")
        if value is not None and value < _NO_LIMIT:
            limit = value if limit is None else min(limit, value)
        if current == base or base not in current.parents:
            break
        current = current.parent
    return limit, usage


def _cgroup_v1(base: Path, rel: str) -> tuple[int | None, int | None]:
    for folder in (base / rel, base):
        value = _read_int(folder / "memory.limit_in_bytes")
        if value is not None:
            usage = _read_int(folder / "memory.usage_in_bytes")
            return (value if value < _NO_LIMIT else None), usage
    return None, None


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def cpu_flags(root: Path) -> tuple[str, ...]:
    """The CPU features that matter for llama.cpp kernels (tie-breaks only)."""
    try:
        text = (root / "proc/cpuinfo").read_text()
    except OSError:
        return ()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return tuple(sorted(set(value.split()) & _CPU_FLAGS))
    return ()


# ---- NVIDIA ----------------------------------------------------------------------------------


def _nvidia(run: Runner, env: Mapping[str, str], notes: list[str]) -> list[GpuInfo]:
    gpus = nvml_gpus(notes)
    if gpus is None:
        output = run(
            ["nvidia-smi", f"--query-gpu={_NVIDIA_SMI_QUERY}", "--format=csv,noheader,nounits"]
        )
        gpus = parse_nvidia_smi(output) if output else []
        if output is None:
            notes.append("no NVIDIA GPU found (NVML unavailable, nvidia-smi not found or failed)")
    return visible_devices(gpus, env.get("CUDA_VISIBLE_DEVICES"))


def nvml_gpus(notes: list[str]) -> list[GpuInfo] | None:
    """GPUs through NVML (`nvidia-ml-py`); None when NVML is not installed or not working."""
    try:
        nvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return None
    try:
        nvml.nvmlInit()
    except Exception as err:  # noqa: BLE001  any NVML failure means "use nvidia-smi"
        notes.append(f"NVML unavailable ({type(err).__name__}); tried nvidia-smi")
        return None
    try:
        return _nvml_devices(nvml)
    except Exception as err:  # noqa: BLE001  a driver error mid-way: fall back as a whole
        notes.append(f"NVML failed ({type(err).__name__}); tried nvidia-smi")
        return None
    finally:
        with contextlib.suppress(Exception):  # shutting down a broken NVML is best effort
            nvml.nvmlShutdown()


def _nvml_devices(nvml: Any) -> list[GpuInfo]:
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        name = nvml.nvmlDeviceGetName(handle)
        uuid = nvml.nvmlDeviceGetUUID(handle)
        gpus.append(
            GpuInfo(
                name=name.decode() if isinstance(name, bytes) else str(name),
                vendor="nvidia",
                vram_total=int(memory.total),
                vram_free=int(memory.free),
                backend="cuda",
                uuid=uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                index=index,
            )
        )
    return gpus


def parse_nvidia_smi(output: str) -> list[GpuInfo]:
    """GPUs from `nvidia-smi --query-gpu=… --format=csv,noheader,nounits` (MiB values)."""
    gpus = []
    for line in output.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 6 or not fields[0].isdigit():
            continue
        total = _mib(fields[3])
        if total is None:
            continue
        gpus.append(
            GpuInfo(
                name=fields[2],
                vendor="nvidia",
                vram_total=total,
                vram_free=_mib(fields[5]),
                backend="cuda",
                uuid=fields[1] or None,
                index=int(fields[0]),
            )
        )
    return gpus


def _mib(text: str) -> int | None:
    return int(float(text)) * MIB if text.replace(".", "", 1).isdigit() else None


def visible_devices(gpus: list[GpuInfo], visible: str | None) -> list[GpuInfo]:
    """Apply `CUDA_VISIBLE_DEVICES` (indices or UUIDs), which NVML itself ignores."""
    if visible is None:
        return gpus
    wanted = [v.strip() for v in visible.split(",") if v.strip()]
    kept = []
    for item in wanted:
        if item.startswith("-"):
            break  # CUDA stops at the first invalid entry
        match = next(
            (
                g
                for g in gpus
                if (item.isdigit() and g.index == int(item))
                or (g.uuid is not None and g.uuid.startswith(item))
            ),
            None,
        )
        if match is None:
            break
        kept.append(match)
    return kept


# ---- AMD and Apple -----------------------------------------------------------------------------


def amd_gpus(root: Path) -> tuple[list[GpuInfo], bool]:
    """AMD GPUs from sysfs (`mem_info_vram_total`); also whether one is an APU (shared RAM)."""
    gpus: list[GpuInfo] = []
    apu = False
    for card in sorted((root / "sys/class/drm").glob("card*/device")):
        try:
            vendor = (card / "vendor").read_text().strip()
        except OSError:
            continue
        if vendor != "0x1002":
            continue
        vram = _read_int(card / "mem_info_vram_total")
        if vram is None:
            continue
        used = _read_int(card / "mem_info_vram_used")
        gtt = _read_int(card / "mem_info_gtt_total") or 0
        try:
            name = (card / "product_name").read_text().strip() or "AMD GPU"
        except OSError:
            name = "AMD GPU"
        # Ollama's rule: a small carve-out with a large GTT is an APU sharing system RAM.
        is_apu = vram <= 4 * GIB and gtt >= 8 * GIB and gtt >= 4 * vram
        apu = apu or is_apu
        gpus.append(
            GpuInfo(
                name=name,
                vendor="amd",
                vram_total=gtt if is_apu else vram,
                vram_free=None if used is None else max(vram - used, 0),
                backend="rocm",
                index=len(gpus),
            )
        )
    return gpus, apu


def apple_gpu_limit(ram: int, wired_limit_mb: int | None) -> int:
    """Metal's usable share of unified memory: `iogpu.wired_limit_mb` if set, else 2/3 or 3/4."""
    if wired_limit_mb:
        return wired_limit_mb * MIB
    return ram * 2 // 3 if ram <= 36 * 10**9 else ram * 3 // 4


def _apple(run: Runner, ram: int, arch: str) -> tuple[bool, int | None, list[GpuInfo]]:
    if arch not in ("arm64", "aarch64"):
        return False, None, []
    wired = (run(["sysctl", "-n", "iogpu.wired_limit_mb"]) or "").strip()
    chip = (run(["sysctl", "-n", "machdep.cpu.brand_string"]) or "Apple silicon").strip()
    limit = apple_gpu_limit(ram, int(wired) if wired.isdigit() else None)
    return True, limit, [GpuInfo(f"{chip} GPU", "apple", limit, backend="metal")]
