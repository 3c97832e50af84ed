"""Hardware detection on folders laid out like /proc and /sys, and profile fingerprints."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from modelsync.hardware.detect import (
    MIB,
    amd_gpus,
    apple_gpu_limit,
    cgroup_memory,
    detect,
    parse_nvidia_smi,
    read_memory,
    visible_devices,
)
from modelsync.hardware.model import GpuInfo, HardwareProfile, declared

GIB = 1 << 30
# nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,memory.free,memory.reserved,...
H100 = (
    "0, GPU-5f3e0c1a-1111-2222-3333-444455556666, NVIDIA H100 80GB HBM3, 81559, 0, 81079, 480, "
    "580.95.05, 9.0, 00000000:19:00.0\n"
)
MEMINFO = "MemTotal:       32768000 kB\nMemFree:         1000000 kB\nMemAvailable:   20000000 kB\n"


def layout(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def no_commands(_argv: Sequence[str]) -> str | None:
    return None


def test_nvidia_smi_output_of_an_h100() -> None:
    """nvidia-smi's CSV (MiB, no units) becomes a GPU with total and free bytes."""
    [gpu] = parse_nvidia_smi(H100 + "garbage line\n")
    assert gpu.name == "NVIDIA H100 80GB HBM3"
    assert gpu.vram_total == 81559 * MIB
    assert gpu.vram_free == 81079 * MIB
    assert gpu.uuid == "GPU-5f3e0c1a-1111-2222-3333-444455556666"
    assert (gpu.vendor, gpu.backend, gpu.index) == ("nvidia", "cuda", 0)


def test_cuda_visible_devices_filters_by_index_and_uuid() -> None:
    """CUDA_VISIBLE_DEVICES (which NVML ignores) selects GPUs by index or UUID prefix."""
    gpus = [GpuInfo(f"g{i}", "nvidia", GIB, uuid=f"GPU-{i}aaa", index=i) for i in range(3)]
    assert [g.index for g in visible_devices(gpus, None)] == [0, 1, 2]
    assert [g.index for g in visible_devices(gpus, "2,0")] == [2, 0]
    assert [g.index for g in visible_devices(gpus, "GPU-1")] == [1]
    assert visible_devices(gpus, "-1") == []
    assert visible_devices(gpus, "") == []


def test_cgroup_v2_limit_caps_ram(tmp_path: Path) -> None:
    """A container's memory.max caps the total, and limit − usage caps what is available."""
    root = layout(
        tmp_path,
        {
            "proc/meminfo": MEMINFO,
            "proc/self/cgroup": "0::/box\n",
            "sys/fs/cgroup/box/memory.max": str(8 * GIB),
            "sys/fs/cgroup/box/memory.current": str(6 * GIB),
            "sys/fs/cgroup/memory.max": "max",
        },
    )
    memory = read_memory(root)
    assert memory is not None
    assert memory.total == 32768000 * 1024
    assert memory.usable_total == 8 * GIB
    assert memory.usable_available == 2 * GIB


def test_cgroup_v1_without_limit(tmp_path: Path) -> None:
    """cgroup v1's "unlimited" (9223372036854771712) is no limit at all."""
    root = layout(
        tmp_path,
        {
            "proc/self/cgroup": "4:memory:/gone\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": "1000",
        },
    )
    assert cgroup_memory(root) == (None, 1000)


def test_meminfo_without_memavailable_sums_free_buffers_cached(tmp_path: Path) -> None:
    """Old kernels lack MemAvailable: free + buffers + cached stands in."""
    root = layout(
        tmp_path,
        {"proc/meminfo": "MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n"},
    )
    memory = read_memory(root)
    assert memory is not None
    assert memory.usable_available == 35 * 1024


def test_amd_gpu_and_apu_from_sysfs(tmp_path: Path) -> None:
    """AMD cards come from sysfs; a small carve-out with a large GTT is an APU."""
    root = layout(
        tmp_path,
        {
            "sys/class/drm/card0/device/vendor": "0x1002\n",
            "sys/class/drm/card0/device/mem_info_vram_total": str(24 * GIB),
            "sys/class/drm/card0/device/mem_info_vram_used": str(GIB),
            "sys/class/drm/card0/device/product_name": "Radeon RX 7900 XTX\n",
            "sys/class/drm/card1/device/vendor": "0x8086\n",
        },
    )
    gpus, apu = amd_gpus(root)
    assert [(g.name, g.vram_total, g.vram_free, g.backend) for g in gpus] == [
        ("Radeon RX 7900 XTX", 24 * GIB, 23 * GIB, "rocm")
    ]
    assert not apu
    layout(
        tmp_path,
        {
            "sys/class/drm/card0/device/mem_info_vram_total": str(512 * MIB),
            "sys/class/drm/card0/device/mem_info_gtt_total": str(16 * GIB),
        },
    )
    gpus, apu = amd_gpus(root)
    assert apu
    assert gpus[0].vram_total == 16 * GIB


def test_apple_working_set_share() -> None:
    """Metal gets the wired limit if set, else 2/3 of RAM up to 36 GB and 3/4 above."""
    assert apple_gpu_limit(16 * 10**9, None) == 16 * 10**9 * 2 // 3
    assert apple_gpu_limit(64 * 10**9, None) == 48 * 10**9
    assert apple_gpu_limit(64 * 10**9, 57344) == 57344 * MIB


def test_detect_on_a_linux_tree_with_nvidia_smi(tmp_path: Path) -> None:
    """Detection combines meminfo, the cgroup, CPU flags and nvidia-smi into one profile."""
    root = layout(
        tmp_path,
        {
            "proc/meminfo": MEMINFO,
            "proc/cpuinfo": "processor: 0\nflags: fpu sse avx2 avx512f amx_tile\n",
        },
    )

    def run(argv: Sequence[str]) -> str | None:
        return H100 if argv[0] == "nvidia-smi" else None

    profile = detect(root, run=run, environ={}, system="Linux", machine="x86_64")
    assert profile.source == "detected"
    assert profile.ram_total == 32768000 * 1024
    assert profile.ram_available == 20000000 * 1024
    assert [g.name for g in profile.gpus] == ["NVIDIA H100 80GB HBM3"]
    assert profile.cpu_flags == ("amx_tile", "avx2", "avx512f")
    none = detect(root, run=no_commands, environ={}, system="Linux", machine="x86_64")
    assert none.gpus == ()
    assert any("nvidia-smi" in note for note in none.notes)


def test_fingerprint_is_stable_and_ignores_free_memory_and_names() -> None:
    """Equal hardware gives equal fingerprints whatever is free now; different VRAM does not."""
    gpu = GpuInfo("H100", "nvidia", 80 * GIB, vram_free=1, uuid="GPU-a")
    busy = GpuInfo("H100", "nvidia", 80 * GIB, vram_free=2, uuid="GPU-b")
    one = HardwareProfile("a", "detected", ram_total=GIB, ram_available=1, gpus=(gpu,), os="linux")
    two = HardwareProfile("b", "detected", ram_total=GIB, ram_available=9, gpus=(busy,), os="linux")
    assert one.fingerprint() == two.fingerprint()
    assert one.fingerprint().startswith("sha256:")
    assert (
        declared("x", ram=GIB, vram=GIB).fingerprint()
        != declared("x", ram=GIB, vram=2 * GIB).fingerprint()
    )


def test_declared_profiles() -> None:
    """A declared profile has its GPUs (vram per GPU) or unified memory, and no detection notes."""
    two = declared("gpu", ram=64 * GIB, vram=24 * GIB, gpus=2)
    assert [g.vram_total for g in two.gpus] == [24 * GIB, 24 * GIB]
    assert two.vram_total == 48 * GIB
    mac = declared("mac", ram=64 * GIB, vram=None, unified=True)
    assert mac.unified
    assert mac.gpus[0].backend == "metal"
    assert declared("cpu", ram=GIB, vram=None).gpus == ()
