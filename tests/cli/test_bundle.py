"""Air gap: `export --bundle` on a connected machine, `import` and `sync --offline` on one
without a registry, as real processes against the local Hub server."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import tarfile
import tempfile
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

WEIGHTS = bytes(range(256)) * 1000
CONFIG = '{"arch": "tiny"}\n'
MANIFEST = '[models.tiny]\nsource = "hf://org/tiny"\ninclude = ["*"]\n'


def closed_port() -> int:
    """A loopback port nothing listens on (taken, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def machine_a(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, run_cli: CliRunner
) -> dict[str, str]:
    """A connected machine: project `a/` synced from the hub into store `store-a`; returns
    its environment."""
    hub_repo("org/tiny", {"weights.bin": WEIGHTS, "config.json": CONFIG})
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "models.toml").write_text(MANIFEST)
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
        "MODELSYNC_STORE": str(tmp_path / "store-a"),
    }
    synced = run_cli("-m", "a", "sync", env=env)
    assert synced.exit_code == 0, synced.stderr
    return env


@pytest.fixture
def machine_b(tmp_path: Path) -> dict[str, str]:
    """A machine behind the air gap: an empty store, the registry at a closed port."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "models.toml").write_text(MANIFEST)
    return {
        "HF_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "HF_HUB_CACHE": str(tmp_path / "no-hf-b"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama-b"),
        "MODELSYNC_STORE": str(tmp_path / "store-b"),
    }


def blob_names(store: Path) -> list[str]:
    return sorted(p.name for p in (store / "blobs" / "sha256").rglob("*") if p.is_file())


@pytest.mark.parametrize("name", ["bundle", "bundle.tar"])
def test_export_carry_import_sync_offline(
    run_cli_process: CliRunner,
    machine_a: dict[str, str],
    machine_b: dict[str, str],
    tmp_path: Path,
    name: str,
) -> None:
    """A bundle (folder or tar) carries exactly the lock's blobs; on a machine whose registry
    is unreachable, `import` admits them and `sync --offline` places the same bytes; a second
    import admits nothing."""
    bundle = tmp_path / "usb" / name
    exported = run_cli_process("-m", "a", "export", "--bundle", str(bundle), env=machine_a)
    assert exported.exit_code == 0, exported.stderr
    assert exported.stdout.startswith(
        f"wrote bundle {'' if name.endswith('.tar') else 'folder '}{bundle}: 2 files in 2 blobs "
        "(250.0 KiB) and models.lock"
    )
    lock = (tmp_path / "a" / "models.lock").read_bytes()
    store_a = Path(machine_a["MODELSYNC_STORE"])
    if bundle.suffix == ".tar":
        with tarfile.open(bundle) as tar:
            names = tar.getnames()
            held = tar.extractfile("models.lock")
            assert held is not None
            assert held.read() == lock
    else:
        names = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
        assert (bundle / "models.lock").read_bytes() == lock
    digests = blob_names(store_a)
    assert sorted(names) == sorted(
        ["bundle.json", "models.lock", *(f"blobs/sha256/{d}" for d in digests)]
    )

    shutil.copy(tmp_path / "a" / "models.lock", tmp_path / "b" / "models.lock")
    imported = run_cli_process("-m", "b", "import", str(bundle), env=machine_b)
    assert imported.exit_code == 0, imported.stderr
    summary, same = imported.stdout.splitlines()[:2]
    assert summary.startswith(
        f"imported {bundle}: 2 blobs admitted (250.0 KiB verified by SHA-256), 0 already in "
        "the store, 0 refused, of 2 ("
    )
    assert same == "  b/models.lock is the bundle's lock; next: modelsync sync --offline"
    assert blob_names(Path(machine_b["MODELSYNC_STORE"])) == digests

    synced = run_cli_process("-m", "b", "sync", "--offline", env=machine_b)
    assert synced.exit_code == 0, synced.stderr
    for rel in ("weights.bin", "config.json"):
        placed = tmp_path / "b" / "models" / "tiny" / rel
        assert placed.read_bytes() == (tmp_path / "a" / "models" / "tiny" / rel).read_bytes()

    again = run_cli_process("-m", "b", "--json", "import", str(bundle), env=machine_b)
    assert again.exit_code == 0, again.stderr
    report = again.json_lines()[-1]
    assert (report["command"], report["admitted"], len(report["present"])) == ("import", [], 2)
    assert report["same_lock"] is True


def test_tar_is_byte_identical_across_exports(
    run_cli: CliRunner, machine_a: dict[str, str], tmp_path: Path
) -> None:
    """Two exports of one lock give the same tar bytes, and its index lists every blob."""
    first, second = tmp_path / "one.tar", tmp_path / "two.tar"
    for path in (first, second):
        assert run_cli("-m", "a", "export", "--bundle", str(path), env=machine_a).exit_code == 0
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        assert tar.getnames()[:2] == ["bundle.json", "models.lock"]
        member = tar.extractfile("bundle.json")
        assert member is not None
        index = json.loads(member.read())
    lock = (tmp_path / "a" / "models.lock").read_bytes()
    assert index["lock"] == {"sha256": hashlib.sha256(lock).hexdigest(), "size": len(lock)}
    assert sorted(b["size"] for b in index["blobs"]) == sorted([len(WEIGHTS), len(CONFIG)])


def test_dry_run_lists_files_and_writes_nothing(
    run_cli: CliRunner, machine_a: dict[str, str], tmp_path: Path
) -> None:
    """`--dry-run` prints each file and the bytes, and writes nothing."""
    bundle = tmp_path / "dry"
    result = run_cli("-m", "a", "export", "--bundle", str(bundle), "--dry-run", env=machine_a)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "  tiny/config.json (17 B)",
        "  tiny/weights.bin (250.0 KiB)",
        f"would write a bundle folder {bundle}: 2 files in 2 blobs (250.0 KiB) and models.lock",
    ]
    assert not bundle.exists()


def test_blobs_missing_from_the_store_stop_export_before_writing(
    run_cli: CliRunner, machine_a: dict[str, str], tmp_path: Path
) -> None:
    """A locked file the store lacks stops export with exit 2, naming it and `sync` as the
    fix; nothing is written."""
    store = Path(machine_a["MODELSYNC_STORE"])
    weights = hashlib.sha256(WEIGHTS).hexdigest()
    blob = store / "blobs" / "sha256" / weights[:2] / weights
    blob.unlink()
    bundle = tmp_path / "b.tar"
    result = run_cli("-m", "a", "export", "--bundle", str(bundle), env=machine_a)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        f"modelsync: error: export --bundle: 1 locked files are not in the store ({store}): "
        "tiny/weights.bin; run `modelsync sync` first (with --profile NAME for each profile "
        "to carry)"
    )
    assert not bundle.exists()
    assert list(tmp_path.glob("*.tmp")) == []


def test_folder_bundle_is_completed_by_a_second_run(
    run_cli: CliRunner, machine_a: dict[str, str], tmp_path: Path
) -> None:
    """A folder export cut off before its index was written is not a bundle (import exits 4
    naming bundle.json); the next export keeps the blobs already there, copies the one
    missing, drops the cut-off run's temporary files and completes it."""
    bundle = tmp_path / "usb"
    assert run_cli("-m", "a", "export", "--bundle", str(bundle), env=machine_a).exit_code == 0
    # What a run cut off while copying the weights leaves: no index, a temporary blob file.
    (bundle / "bundle.json").unlink()
    weights = bundle / "blobs" / "sha256" / hashlib.sha256(WEIGHTS).hexdigest()
    weights.unlink()
    temps = [bundle / f".{weights.name}.x1.tmp", bundle / ".bundle.json.x2.tmp"]
    temps[0] = weights.with_name(temps[0].name)
    for temp in temps:
        temp.write_bytes(WEIGHTS[:1000])
    cut = run_cli("import", str(bundle), env=machine_a)
    assert cut.exit_code == 4
    assert cut.stderr.splitlines()[-1].startswith(
        f"modelsync: error: {bundle}: bundle.json is missing from the bundle; not a complete bundle"
    )
    again = run_cli("-m", "a", "export", "--bundle", str(bundle), env=machine_a)
    assert again.exit_code == 0, again.stderr
    assert "1 blobs hardlinked, 0 copied, 1 already there, 1 removed" in again.stdout
    assert (bundle / "bundle.json").is_file()
    assert weights.read_bytes() == WEIGHTS
    assert not any(temp.exists() for temp in temps)


def test_export_refuses_a_folder_holding_other_files(
    run_cli: CliRunner, machine_a: dict[str, str], tmp_path: Path
) -> None:
    """export never writes into (or removes from) a folder that holds files no bundle holds."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    result = run_cli("-m", "a", "export", "--bundle", str(folder), env=machine_a)
    assert result.exit_code == 2
    assert f"--bundle {folder}: the folder holds notes.txt, which no bundle holds" in (
        result.stderr
    )
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]


def test_a_folder_on_another_filesystem_gets_copies(
    run_cli: CliRunner, machine_a: dict[str, str], tmp_path: Path
) -> None:
    """Where the bundle folder is on another filesystem than the store (here /dev/shm), blobs
    are copied, read-only, with the same bytes."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        bundle = Path(other) / "bundle"
        result = run_cli("-m", "a", "export", "--bundle", str(bundle), env=machine_a)
        assert result.exit_code == 0, result.stderr
        assert "0 blobs hardlinked, 2 copied, 0 already there" in result.stdout
        weights = bundle / "blobs" / "sha256" / hashlib.sha256(WEIGHTS).hexdigest()
        assert weights.read_bytes() == WEIGHTS
        assert weights.stat().st_mode & 0o777 == 0o444


def test_a_stale_lock_is_not_bundled(
    run_cli: CliRunner, machine_a: dict[str, str], tmp_path: Path
) -> None:
    """A lock stale versus models.toml would not sync offline over there: exit 3, nothing
    written."""
    manifest = tmp_path / "a" / "models.toml"
    manifest.write_text(MANIFEST.replace('["*"]', '["*.bin"]'))
    bundle = tmp_path / "stale.tar"
    result = run_cli("-m", "a", "export", "--bundle", str(bundle), env=machine_a)
    assert result.exit_code == 3
    last = result.stderr.splitlines()[-1]
    assert last.startswith("modelsync: error: a/models.lock: stale (models.toml changed since ")
    assert last.endswith("run `modelsync lock` (and `modelsync sync`) first")
    assert not bundle.exists()
