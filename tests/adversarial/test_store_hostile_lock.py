"""A lock that lies about a blob the store holds never costs that blob: a size that disagrees
with a verified blob is a lock error (exit 2 naming the lock's line), and bytes found bad are
moved to `<store>/quarantine/`, never deleted."""

from __future__ import annotations

import hashlib
import random
import re
import time
from pathlib import Path

import pytest

from modelsync.ops.gc import GcRequest, gc_store
from modelsync.server.runner import ServerHandle
from modelsync.store.gc import QUARANTINE_S
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

WEIGHTS = random.Random(21).randbytes(60_000)  # noqa: S311 - reproducible test data
DIGEST = hashlib.sha256(WEIGHTS).hexdigest()


@pytest.fixture
def env(hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path) -> dict[str, str]:
    """org/w on the hub; caches that hold nothing to adopt."""
    hub_repo("org/w", {"weights.bin": WEIGHTS})
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def project(folder: Path) -> Path:
    folder.mkdir()
    manifest = folder / "models.toml"
    manifest.write_text('[models.w]\nsource = "hf://org/w"\ninclude = ["*"]\n')
    return manifest


def error_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("modelsync: error:"))


@pytest.mark.parametrize("lie", [10, 10**30])
def test_wrong_size_in_one_lock_never_deletes_a_shared_blob(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path, lie: int
) -> None:
    """Project b's lock gives the shared file a wrong size: sync and status in b exit 2 naming
    b's lock, the line of that size, the model and the path; the verified blob stays, so project
    a's symlink still reads the locked bytes and a's verify passes."""
    a, b = project(tmp_path / "a"), project(tmp_path / "b")
    assert run_cli("-m", str(a), "sync", "--link", "symlink", env=env).exit_code == 0
    assert run_cli("-m", str(b), "lock", env=env).exit_code == 0
    lock = b.with_name("models.lock")
    text = lock.read_text()
    assert f"size = {len(WEIGHTS)}\n" in text
    lock.write_text(text.replace(f"size = {len(WEIGHTS)}\n", f"size = {lie}\n"))
    line = lock.read_text().splitlines().index(f"size = {lie}") + 1
    blob = StoreLayout(tmp_path / "store").blob_path(DIGEST)
    for command in ("sync", "status"):
        result = run_cli("-m", str(b), command, env=env)
        assert result.exit_code == 2, result.stderr
        assert error_line(result.stderr) == (
            f"modelsync: error: {lock}:{line}: model w, file weights.bin: size = {lie}, but the "
            f"store's blob {blob} holds {len(WEIGHTS)} bytes that hash to its name "
            f"(sha256 {DIGEST}); the blob is kept; fix that size in models.lock "
            "(restore it from git, or `modelsync lock --upgrade` to regenerate it)"
        )
    assert blob.read_bytes() == WEIGHTS
    placed = tmp_path / "a" / "models" / "w" / "weights.bin"
    assert placed.is_symlink()
    assert placed.read_bytes() == WEIGHTS
    assert run_cli("-m", str(a), "verify", "--full", env=env).exit_code == 0


def test_bad_bytes_in_a_blob_are_quarantined_then_fetched_again(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """A blob whose bytes do not hash to its name is moved to `<store>/quarantine/` under a
    unique name (sha256 first) and fetched again; twice over, both bad copies are kept."""
    a = project(tmp_path / "a")
    assert run_cli("-m", str(a), "sync", "--link", "symlink", env=env).exit_code == 0
    layout = StoreLayout(tmp_path / "store")
    blob = layout.blob_path(DIGEST)
    bad = [b"garbage" * 10, b"G" * len(WEIGHTS)]
    for content in bad:
        blob.chmod(0o644)
        blob.write_bytes(content)
        result = run_cli("-m", str(a), "sync", "--repair", "--link", "symlink", env=env)
        assert result.exit_code == 0, result.stderr
        assert blob.read_bytes() == WEIGHTS
    quarantined = sorted((layout.root / "quarantine").iterdir())
    assert len(quarantined) == 2
    assert all(re.fullmatch(rf"{DIGEST}\.\S+", p.name) for p in quarantined)
    assert sorted(p.read_bytes() for p in quarantined) == sorted(bad)
    assert (tmp_path / "a" / "models" / "w" / "weights.bin").read_bytes() == WEIGHTS


def test_gc_keeps_quarantined_bytes_for_a_week(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """`gc` leaves a fresh quarantine entry alone and removes it once it is a week old."""
    a = project(tmp_path / "a")
    assert run_cli("-m", str(a), "sync", "--link", "symlink", env=env).exit_code == 0
    layout = StoreLayout(tmp_path / "store")
    blob = layout.blob_path(DIGEST)
    blob.chmod(0o644)
    blob.write_bytes(b"bad")
    assert run_cli("-m", str(a), "sync", "--link", "symlink", env=env).exit_code == 0
    [kept] = layout.quarantine_dir.iterdir()
    assert not gc_store(GcRequest(store=layout.root)).plan
    assert kept.exists()
    later = time.time() + QUARANTINE_S + 60
    report = gc_store(GcRequest(store=layout.root, clock=lambda: later))
    assert [(i.path, i.why) for i in report.plan.temps] == [(kept, "quarantined bad bytes")]
    assert not kept.exists()
    assert blob.read_bytes() == WEIGHTS
