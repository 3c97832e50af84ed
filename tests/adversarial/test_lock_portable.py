"""A lock does not depend on who ran `lock`: simulated machines (a /proc and /sys tree and
nvidia-smi's output given to the real detector) lock the same manifest, and the files are
diffed; `sync` says when the locked choice does not fit this machine (`--strict-fit`: exit 2)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from modelsync.errors import ExitCode, ModelsyncError
from modelsync.lockfile.model import LockedProfile
from modelsync.lockfile.render import parse_lock, render_lock
from modelsync.manifest.load import load_manifest
from modelsync.manifest.model import canonical_digest
from modelsync.net.retry import RetryPolicy
from modelsync.ops.lock import LockReport, LockRequest, lock_project
from modelsync.ops.sync import SyncReport, SyncRequest, sync_project
from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import make_gguf_repo
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory
from tests.fixtures.machines import Detector, simulated_machine

FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)
MID = "org/Mid-GGUF"
TINY = "org/Tiny-GGUF"
# nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used,memory.free,... (MiB)
SMALL_NVIDIA = "0, GPU-1111, NVIDIA Tiny, 1652, 0, 1600, 0, 580.95.05, 8.6, 00000000:01:00.0\n"


@pytest.fixture
def machines(tmp_path: Path) -> dict[str, Detector]:
    """Three machines: a small NVIDIA GPU, a big AMD workstation, a 128 MiB board."""
    return {
        "nvidia": simulated_machine(tmp_path / "m-nvidia", ram_mib=1024, nvidia=SMALL_NVIDIA),
        "amd": simulated_machine(tmp_path / "m-amd", ram_mib=65536, amd_vram_mib=24576),
        "board": simulated_machine(tmp_path / "m-board", ram_mib=128),
    }


@pytest.fixture(scope="session")
def repo_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Mid (4 layers, ~58 MB: the choice depends on the machine) and Tiny (fits anywhere)."""
    mid = tmp_path_factory.mktemp("mid")
    make_gguf_repo(
        mid, "Mid", n_embd=512, n_ff=1024, n_layers=4, n_head=8, n_head_kv=2, context_length=8192
    )
    tiny = tmp_path_factory.mktemp("tiny")
    make_gguf_repo(tiny, "Tiny")
    return {MID: mid, TINY: tiny}


@pytest.fixture
def repos(hub_repo: HubRepoFactory, repo_dirs: dict[str, Path]) -> dict[str, str]:
    """Both repos on the running hub; their commits."""
    return {
        name: hub_repo(name, {p.name: p for p in folder.iterdir()}).commit
        for name, folder in repo_dirs.items()
    }


def project(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "models.toml"
    manifest.write_text(text)
    return manifest


def lock(manifest: Path, hub: ServerHandle, on: Detector, **options: object) -> LockReport:
    request = LockRequest(
        manifest=manifest,
        environ={"HF_ENDPOINT": hub.endpoint},
        retry=FAST,
        detector=on,
        **options,  # type: ignore[arg-type]
    )
    return asyncio.run(lock_project(request))


def sync(manifest: Path, hub: ServerHandle, on: Detector, **options: object) -> SyncReport:
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(manifest.parent / "no-hf"),
        "OLLAMA_MODELS": str(manifest.parent / "no-ollama"),
    }
    request = SyncRequest(
        manifest=manifest,
        store=manifest.parent / "store",
        environ=env,
        retry=FAST,
        detector=on,
        **options,  # type: ignore[arg-type]
    )
    return asyncio.run(sync_project(request))


@pytest.mark.usefixtures("repos")
def test_second_machine_keeps_the_lock_byte_identical(
    hub: ServerHandle, machines: dict[str, Detector], tmp_path: Path
) -> None:
    """Without profiles, a lock on a second machine (other RAM, VRAM, GPU vendor) re-chooses
    nothing and writes nothing; the file names no machine."""
    manifest = project(tmp_path / "p", f'[models.mid]\nsource = "hf://{MID}"\n')
    first = lock(manifest, hub, machines["nvidia"])
    path = first.lock_path
    before = path.read_bytes()
    text = before.decode()
    assert "[[profile]]" not in text
    assert "detected" not in text
    assert "fingerprint" not in text
    [entry] = parse_lock(text).models
    assert entry.quant == "Q5_K_M"  # what fits the small GPU
    assert entry.memory is not None
    assert entry.reason.startswith("Q5_K_M: ")
    assert entry.reason == (
        "Q5_K_M: the best quality up to Q8_0 that fits the machine it was chosen on "
        "(needs est. 185 MiB, ctx 8192); Q6_K (est. 186 MiB): partial offload 3/4 layers"
    )
    second = lock(manifest, hub, machines["amd"])
    assert (second.written, second.requests) == (False, 0)
    assert path.read_bytes() == before
    upgraded = lock(manifest, hub, machines["amd"], upgrade_models=("mid",))
    assert upgraded.written  # an explicit upgrade re-chooses for the machine it runs on
    assert parse_lock(path.read_text()).models[0].quant == "Q8_0"


@pytest.mark.usefixtures("repos")
def test_fresh_locks_on_two_machines_diff_equal(
    hub: ServerHandle, machines: dict[str, Detector], tmp_path: Path
) -> None:
    """Declared profiles, or a choice both machines share, give byte-identical files when each
    machine locks from scratch."""
    one_machine, other = machines["nvidia"](), machines["amd"]()
    assert one_machine.fingerprint() != other.fingerprint()
    assert [g.vendor for g in one_machine.gpus + other.gpus] == ["nvidia", "amd"]
    declared = '[profiles.gpu]\nram = "1GiB"\nvram = "1652MiB"\n[profiles.laptop]\nram = "1GiB"\n'
    both = f'[models.mid]\nsource = "hf://{MID}"\n[models.tiny]\nsource = "{TINY}"\n'
    for name, text in (
        ("declared", declared + both),
        ("none", f'[models.tiny]\nsource = "{TINY}"\n'),
    ):
        one = project(tmp_path / name / "one", text)
        two = project(tmp_path / name / "two", text)
        lock(one, hub, machines["nvidia"])
        lock(two, hub, machines["amd"])
        a = one.with_name("models.lock").read_text()
        b = two.with_name("models.lock").read_text()
        assert a == b, name
        assert "detected" not in a


@pytest.mark.usefixtures("repos")
def test_old_lock_with_a_detected_profile_loads_and_is_rewritten_without_it(
    hub: ServerHandle, machines: dict[str, Detector], tmp_path: Path
) -> None:
    """A lock written by an older version (a `detected` [[profile]], inputs digested with its
    fingerprint) still syncs; the next lock keeps its choice and drops the machine."""
    manifest = project(tmp_path / "p", f'[models.mid]\nsource = "hf://{MID}"\n')
    lock(manifest, hub, machines["nvidia"])
    path = manifest.with_name("models.lock")
    current = parse_lock(path.read_text())
    fingerprint = machines["nvidia"]().fingerprint()
    spec = load_manifest(manifest).model("mid")
    assert spec is not None
    legacy = canonical_digest({"model": spec.canonical(), "profiles": [["detected", fingerprint]]})
    old = replace(
        current,
        profiles=(
            LockedProfile(
                name="detected",
                source="detected",
                fingerprint=fingerprint,
                ram=1 << 30,
                vram=1652 << 20,
                gpus=1,
            ),
        ),
        models=tuple(replace(m, inputs=legacy) for m in current.models),
    )
    path.write_text(render_lock(old))
    assert 'source = "detected"' in path.read_text()
    synced = sync(manifest, hub, machines["amd"], frozen=True)
    assert synced.models == ("mid",)
    again = lock(manifest, hub, machines["amd"])
    assert (again.written, again.requests) == (True, 0)
    assert all(m.reused for m in again.models)
    assert path.read_text() == render_lock(current)


@pytest.mark.usefixtures("repos")
def test_sync_says_when_the_locked_choice_does_not_fit(
    hub: ServerHandle, machines: dict[str, Detector], tmp_path: Path
) -> None:
    """A lock made on a bigger machine syncs on a 128 MiB board with a warning naming the
    model, its need, the board and the fix; with strict_fit it is exit 2 and nothing lands."""
    manifest = project(tmp_path / "p", f'[models.tiny]\nsource = "{TINY}"\n')
    lock(manifest, hub, machines["amd"])
    with pytest.raises(ModelsyncError) as caught:
        sync(manifest, hub, machines["board"], frozen=True, strict_fit=True)
    assert caught.value.exit_code == ExitCode.USAGE
    message = caught.value.one_line()
    assert message.startswith("models.tiny: the locked Q8_0 needs est. 163 MiB at ctx 4096; ")
    assert "this machine has 96 MiB usable (128 MiB RAM)" in message
    assert "[profiles]" in message
    assert "lock --profile" in message
    assert not (tmp_path / "p" / "models").exists()
    report = sync(manifest, hub, machines["board"], frozen=True)
    assert [w.split(":")[0] for w in report.misfits] == ["models.tiny"]
    assert (tmp_path / "p" / "models" / "tiny").is_dir()
    fine = sync(manifest, hub, machines["amd"], frozen=True, strict_fit=True)
    assert fine.misfits == ()


def test_strict_fit_flag_exits_2_on_the_command_line(
    run_cli: CliRunner, hub: ServerHandle, repos: dict[str, str], tmp_path: Path
) -> None:
    """`sync --strict-fit` exits 2 with one line when a locked estimate exceeds this machine;
    plain `sync` prints the warning and syncs."""
    assert repos
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    Path("models.toml").write_text(f'[models.tiny]\nsource = "{TINY}:Q4_K_M"\n')
    assert run_cli("lock", env=env).exit_code == 0
    locked = parse_lock(Path("models.lock").read_text())
    # An estimate no machine has (1 PiB): as if locked for a far bigger model.
    huge = replace(locked, models=tuple(replace(m, memory=1 << 50) for m in locked.models))
    Path("models.lock").write_text(render_lock(huge))
    strict = run_cli("sync", "--strict-fit", env=env)
    assert strict.exit_code == 2
    [error] = [line for line in strict.stderr.splitlines() if line.startswith("modelsync: error")]
    assert error.startswith(
        "modelsync: error: models.tiny: the locked Q4_K_M needs est. 1048576.0 GiB at ctx 4096; "
        "this machine has "
    )
    assert error.endswith("(or `modelsync lock --profile NAME`)")
    assert not Path("models").exists()
    plain = run_cli("sync", env=env)
    assert plain.exit_code == 0, plain.stderr
    assert plain.stderr.startswith("warning: models.tiny: the locked Q4_K_M needs est. ")
    assert Path("models/tiny/Tiny-Q4_K_M.gguf").is_file()
