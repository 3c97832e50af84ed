"""Bytes written in place through a placed hardlink, with the mtime put back, are caught: the stat
cache key holds the ctime (which no user can set back), so `status`, `verify` and `sync` look at
the bytes again; a state.db of the older schema (no ctime) vouches for nothing."""

from __future__ import annotations

import hashlib
import os
import random
import sqlite3
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

WEIGHTS = random.Random(13).randbytes(80_000)  # noqa: S311 - reproducible test data
DIGEST = hashlib.sha256(WEIGHTS).hexdigest()
OLD_SCHEMA = """
CREATE TABLE verified (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    boot TEXT
)
"""


@pytest.fixture
def env(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, cli_env: dict[str, str]
) -> dict[str, str]:
    """models.toml in the working dir with model `w` (org/w on the hub); no caches to adopt."""
    assert cli_env  # the working dir and the store are the test's own
    hub_repo("org/w", {"weights.bin": WEIGHTS})
    Path("models.toml").write_text('[models.w]\nsource = "hf://org/w"\ninclude = ["*"]\n')
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def write_in_place(path: Path, data: bytes) -> None:
    """Overwrite the start of `path` (as root would, read-only bit or not) and put its mtime
    back."""
    st = path.stat()
    path.chmod(0o644)
    with path.open("r+b") as handle:
        handle.write(data)
    path.chmod(st.st_mode & 0o777)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    while path.stat().st_ctime_ns == st.st_ctime_ns:  # a coarse clock: until its next tick
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns


def test_in_place_write_to_a_hardlinked_placement_is_caught(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """After the write, `status` reports drift (3) naming the bad blob, `verify` fails (4), and
    `sync` moves the bad bytes to quarantine, fetches the file again and re-links it."""
    assert run_cli("sync", "--link", "hardlink", env=env).exit_code == 0
    placed = Path("models/w/weights.bin").absolute()
    blob = StoreLayout(tmp_path / "store").blob_path(DIGEST)
    assert placed.stat().st_ino == blob.stat().st_ino
    assert run_cli("status", env=env).exit_code == 0
    write_in_place(placed, b"tampered")
    status = run_cli("status", env=env)
    assert status.exit_code == 3
    assert f"  bad     {blob}: sha256 " in status.stdout
    verify = run_cli("verify", env=env)
    assert verify.exit_code == 4
    assert f"{blob}: expected 80000 bytes, sha256 {DIGEST}, found 80000 bytes, sha256 " in (
        verify.stderr
    )
    synced = run_cli("sync", "--link", "hardlink", env=env)
    assert synced.exit_code == 0, synced.stderr
    assert placed.read_bytes() == WEIGHTS
    assert placed.stat().st_ino == blob.stat().st_ino
    [kept] = (tmp_path / "store" / "quarantine").iterdir()
    assert kept.read_bytes().startswith(b"tampered")
    assert run_cli("verify", "--full", env=env).exit_code == 0
    assert run_cli("status", env=env).exit_code == 0


def test_in_place_write_to_a_placed_copy_is_caught(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """The same write to a copy sync placed: `status` reports it changed since placed (3),
    `verify` fails (4), `sync` refuses to overwrite it (3) and `sync --repair` replaces it."""
    assert run_cli("sync", "--link", "copy", env=env).exit_code == 0
    placed = Path("models/w/weights.bin").absolute()
    assert run_cli("status", env=env).exit_code == 0
    write_in_place(placed, b"tampered")
    status = run_cli("status", env=env)
    assert status.exit_code == 3
    assert "  conflict w/weights.bin: changed since modelsync placed it" in status.stdout
    verify = run_cli("verify", env=env)
    assert verify.exit_code == 4
    assert f"{placed}: expected 80000 bytes, sha256 {DIGEST}, found 80000 bytes, sha256 " in (
        verify.stderr
    )
    assert run_cli("sync", "--link", "copy", env=env).exit_code == 3
    assert placed.read_bytes().startswith(b"tampered")
    assert run_cli("sync", "--repair", "--link", "copy", env=env).exit_code == 0
    assert placed.read_bytes() == WEIGHTS
    assert run_cli("status", env=env).exit_code == 0


def test_state_db_of_the_old_schema_is_migrated_and_trusts_nothing(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """A state.db written before the ctime was part of the key, whose row vouches for a blob
    changed in place since, no longer vouches: `verify` hashes the blob and names it, and the
    store keeps working (sync repairs, verify passes)."""
    assert run_cli("sync", "--link", "hardlink", env=env).exit_code == 0
    layout = StoreLayout(tmp_path / "store")
    blob = layout.blob_path(DIGEST)
    write_in_place(blob, b"tampered")
    st = blob.stat()
    for leftover in layout.root.glob("state.db*"):
        leftover.unlink()
    with sqlite3.connect(layout.state_path) as db:
        db.execute(OLD_SCHEMA)
        db.execute(
            "INSERT INTO verified VALUES (?, ?, ?, ?, ?, NULL)",
            (str(blob), st.st_size, st.st_mtime_ns, st.st_ino, DIGEST),
        )
    db.close()
    verify = run_cli("verify", env=env)
    assert verify.exit_code == 4, verify.stderr
    assert f"{blob}: expected 80000 bytes, sha256 {DIGEST}, found 80000 bytes, sha256 " in (
        verify.stderr
    )
    assert run_cli("sync", "--link", "hardlink", env=env).exit_code == 0
    assert run_cli("verify", env=env).exit_code == 0
    assert Path("models/w/weights.bin").read_bytes() == WEIGHTS


def test_syncs_own_links_keep_the_cache_vouching_for_the_blob(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """Sync's own hardlinks (the link-mode probe, the placement, the removal of a stale one)
    change the blob's ctime; its cache entry follows them, so the next run reads no content."""
    assert run_cli("sync", env=env).exit_code == 0
    layout = StoreLayout(tmp_path / "store")
    blob = layout.blob_path(DIGEST)
    assert Path("models/w/weights.bin").stat().st_ino == blob.stat().st_ino
    with open_state(layout.state_path) as state:
        assert state.lookup(blob, blob.stat()) == DIGEST
    Path("models.toml").write_text(
        '[models.v]\nsource = "hf://org/w"\ninclude = ["*"]\n'
    )  # w is no longer wanted: its placement is removed, v's placed
    assert run_cli("sync", env=env).exit_code == 0
    assert not Path("models/w").exists()
    with open_state(layout.state_path) as state:
        assert state.lookup(blob, blob.stat()) == DIGEST
