"""gc roots: blobs that placed files still use survive a moved project and a re-written lock,
and `gc --dry-run` names what it would remove."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

V1 = random.Random(31).randbytes(40_000)  # noqa: S311 - reproducible test data
V2 = random.Random(32).randbytes(30_000)  # noqa: S311 - reproducible test data


@pytest.fixture
def env(hub: ServerHandle, tmp_path: Path) -> dict[str, str]:
    """The hub as the implicit `hf` registry; caches that hold nothing to adopt."""
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def project(folder: Path) -> Path:
    """A project using org/a (all files) in `folder`; returns its manifest."""
    folder.mkdir(parents=True)
    manifest = folder / "models.toml"
    manifest.write_text('[models.a]\nsource = "hf://org/a"\ninclude = ["*"]\n')
    return manifest


def test_gc_keeps_the_blobs_of_a_moved_project_and_reports_it(
    run_cli: CliRunner, hub_repo: HubRepoFactory, env: dict[str, str], tmp_path: Path
) -> None:
    """A project synced with symlinks and then moved: gc reports its lock as missing and keeps
    the blob its symlinks point at; `--forget-missing --dry-run` names that blob by repo/path,
    and once the project synced in its new place, forgetting the old place frees nothing."""
    hub_repo("org/a", {"w.bin": V1})
    old = tmp_path / "old"
    manifest = project(old)
    assert run_cli("-m", str(manifest), "sync", "--link", "symlink", env=env).exit_code == 0
    new = tmp_path / "new"
    old.rename(new)
    placed = new / "models" / "a" / "w.bin"

    gc = run_cli("gc")
    assert gc.exit_code == 0, gc.stderr
    assert placed.read_bytes() == V1
    assert f"missing lock              {old / 'models.lock'} (moved or deleted?" in gc.stdout

    dry = run_cli("gc", "--forget-missing", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    blob = StoreLayout(tmp_path / "store").blob_path(hashlib.sha256(V1).hexdigest())
    line = next(x for x in dry.stdout.splitlines() if "unreferenced" in x)
    assert str(blob) in line
    assert line.endswith("(39.1 KiB): org/a/w.bin")
    assert placed.read_bytes() == V1

    assert run_cli("-m", str(new / "models.toml"), "sync", env=env).exit_code == 0
    done = run_cli("gc", "--forget-missing")
    assert done.exit_code == 0, done.stderr
    assert f"forget lock               {old / 'models.lock'}" in done.stdout
    assert "unreferenced" not in done.stdout
    assert placed.read_bytes() == V1
    assert "missing lock" not in run_cli("gc").stdout


def test_gc_keeps_the_blobs_of_placed_files_until_a_new_lock_is_synced(
    run_cli: CliRunner, hub_repo: HubRepoFactory, env: dict[str, str], tmp_path: Path
) -> None:
    """`lock --upgrade` re-pins a file but sync has not run yet: the symlink placed for the old
    lock keeps its blob through gc; after sync places the new file, gc frees the old blob."""
    hub_repo("org/a", {"w.bin": V1})
    manifest = project(tmp_path / "p")
    assert run_cli("-m", str(manifest), "sync", "--link", "symlink", env=env).exit_code == 0
    hub_repo("org/a", {"w.bin": V2})
    assert run_cli("-m", str(manifest), "lock", "--upgrade", env=env).exit_code == 0
    placed = tmp_path / "p" / "models" / "a" / "w.bin"

    gc = run_cli("gc")
    assert gc.exit_code == 0, gc.stderr
    assert placed.read_bytes() == V1

    assert run_cli("-m", str(manifest), "sync", "--link", "symlink", env=env).exit_code == 0
    assert placed.read_bytes() == V2
    old_blob = hashlib.sha256(V1).hexdigest()
    freed = run_cli("gc")
    assert freed.exit_code == 0, freed.stderr
    assert old_blob in freed.stdout
    assert not any(p.name == old_blob for p in (tmp_path / "store").rglob("*"))
    assert placed.read_bytes() == V2


def test_a_registration_from_before_blob_lists_holds_every_blob_once_its_lock_is_gone(
    run_cli: CliRunner, hub_repo: HubRepoFactory, env: dict[str, str], tmp_path: Path
) -> None:
    """A registration as older versions wrote it (lock and target only) whose project is gone:
    gc cannot tell which blobs it used, so it removes none and says so; `--forget-missing`
    drops it and frees the blob."""
    hub_repo("org/a", {"w.bin": V1})
    manifest = project(tmp_path / "p")
    assert run_cli("-m", str(manifest), "sync", env=env).exit_code == 0
    [entry] = (tmp_path / "store" / "locks.d").glob("*.json")
    lock, target = tmp_path / "p" / "models.lock", tmp_path / "p" / "models"
    entry.write_text(json.dumps({"lock": str(lock), "target": str(target)}, sort_keys=True))
    shutil.rmtree(tmp_path / "p")

    held = run_cli("gc")
    assert held.exit_code == 0, held.stderr
    assert f"missing lock              {lock} (moved or deleted? every blob is kept" in held.stdout
    assert "; 1 unreferenced blobs held for the missing ones" in held.stdout
    blob = StoreLayout(tmp_path / "store").blob_path(hashlib.sha256(V1).hexdigest())
    assert blob.exists()

    freed = run_cli("gc", "--forget-missing")
    assert freed.exit_code == 0, freed.stderr
    assert f"forget lock               {lock} (no longer exists)" in freed.stdout
    assert not blob.exists()
