"""Review of air-gap import: a `gc` between `import` and `sync --offline` must not free the
imported blobs; the import's hold ends once a sync registers a lock listing them, or on
`gc --forget-missing`."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

WEIGHTS = bytes(range(256)) * 400
MANIFEST = '[models.tiny]\nsource = "hf://org/tiny"\ninclude = ["*"]\n'


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _blobs(store: Path) -> list[str]:
    return sorted(p.name for p in (store / "blobs" / "sha256").rglob("*") if p.is_file())


@pytest.fixture
def imported(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, run_cli: CliRunner
) -> dict[str, str]:
    """Project `a` synced and exported to a tar; project `b` (the bundle's lock, its registry
    unreachable) imported it into store `store-b`; returns b's environment."""
    hub_repo("org/tiny", {"weights.bin": WEIGHTS, "config.json": '{"a": 1}\n'})
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "models.toml").write_text(MANIFEST)
    env_a = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
        "MODELSYNC_STORE": str(tmp_path / "store-a"),
    }
    assert run_cli("-m", "a", "sync", env=env_a).exit_code == 0
    bundle = tmp_path / "usb" / "models.tar"
    assert run_cli("-m", "a", "export", "--bundle", str(bundle), env=env_a).exit_code == 0
    shutil.copy(tmp_path / "a" / "models.lock", tmp_path / "b" / "models.lock")
    env_b = {**env_a, "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}"}
    env_b["MODELSYNC_STORE"] = str(tmp_path / "store-b")
    done = run_cli("-m", "b", "import", str(bundle), env=env_b)
    assert done.exit_code == 0, done.stderr
    assert _blobs(tmp_path / "store-b") == _blobs(tmp_path / "store-a")
    return env_b


def test_gc_between_import_and_sync_keeps_the_imported_blobs(
    imported: dict[str, str], tmp_path: Path, run_cli: CliRunner
) -> None:
    """`gc` right after `import` frees nothing imported, so `sync --offline` still places every
    file; after that sync the import's own hold is gone and the project's lock keeps them."""
    store = Path(imported["MODELSYNC_STORE"])
    held = _blobs(store)
    gc = run_cli("-m", "b", "gc", env=imported)
    assert gc.exit_code == 0, gc.stderr
    assert _blobs(store) == held
    synced = run_cli("-m", "b", "sync", "--offline", env=imported)
    assert synced.exit_code == 0, synced.stderr
    assert (tmp_path / "b" / "models" / "tiny" / "weights.bin").read_bytes() == WEIGHTS
    assert len(list((store / "locks.d").glob("*.json"))) == 1  # the project's alone
    assert not any((store / "imports").iterdir())
    (tmp_path / "b" / "models.lock").unlink()
    shutil.rmtree(tmp_path / "b" / "models")
    freed = run_cli("-m", "b", "gc", "--forget-missing", env=imported)
    assert freed.exit_code == 0, freed.stderr
    assert _blobs(store) == []


def test_forget_missing_drops_an_import_no_sync_took_over(
    imported: dict[str, str], run_cli: CliRunner
) -> None:
    """An import nothing synced is held until `gc --forget-missing`, which says so and frees
    its blobs."""
    store = Path(imported["MODELSYNC_STORE"])
    dry = run_cli("-m", "b", "gc", "--dry-run", env=imported)
    assert dry.exit_code == 0, dry.stderr
    assert "0 blobs" in dry.stdout
    forgot = run_cli("-m", "b", "gc", "--forget-missing", env=imported)
    assert forgot.exit_code == 0, forgot.stderr
    assert "imported bundle lock, no sync registered it" in forgot.stdout
    assert _blobs(store) == []
    assert list((store / "locks.d").glob("*.json")) == []
