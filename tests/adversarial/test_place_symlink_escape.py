"""Stale removal never follows a symlinked folder out of the target dir."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

DEEP = random.Random(41).randbytes(20_000)  # noqa: S311 - reproducible test data
KEEP = random.Random(42).randbytes(10_000)  # noqa: S311 - reproducible test data


def test_stale_removal_leaves_a_file_behind_a_symlinked_folder_alone(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A placed folder moved out of the target and replaced by a symlink to its new place:
    when the lock drops the file in it, sync leaves the file outside the target untouched
    (and still succeeds), while a stale file inside the target is removed as usual."""
    hub_repo("org/m", {"sub/deep.bin": DEEP, "keep.bin": KEEP, "gone.bin": b"g" * 100})
    manifest = tmp_path / "models.toml"
    manifest.write_text('[models.m]\nsource = "hf://org/m"\ninclude = ["*"]\n')
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    assert run_cli("sync", "--link", "copy", env=env).exit_code == 0
    model = tmp_path / "models" / "m"
    outside = tmp_path / "elsewhere"
    (model / "sub").rename(outside)
    (model / "sub").symlink_to(outside, target_is_directory=True)

    manifest.write_text('[models.m]\nsource = "hf://org/m"\ninclude = ["keep.bin"]\n')
    shrunk = run_cli("sync", env=env)
    assert shrunk.exit_code == 0, shrunk.stderr
    assert (outside / "deep.bin").read_bytes() == DEEP
    assert "a symlink or not a folder: never followed out of the target dir" in shrunk.stderr
    assert (model / "sub").is_symlink()
    assert not (model / "gone.bin").exists()
    assert (model / "keep.bin").read_bytes() == KEEP


def test_a_forged_record_entry_cannot_delete_a_store_blob_through_a_symlinked_folder(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A record entry naming `m/evil/<sha>`, stat-identical to the store's blob, where `m/evil`
    is a symlink to the blob's shard folder: the next sync treats it as a stale placement but
    never deletes the blob through the symlink, and the project still verifies."""
    hub_repo("org/m", {"keep.bin": KEEP})
    Path("models.toml").write_text('[models.m]\nsource = "hf://org/m"\ninclude = ["*"]\n')
    env = {"HF_ENDPOINT": hub.endpoint, "OLLAMA_MODELS": str(tmp_path / "no-ollama")}
    assert run_cli("sync", "--link", "copy", env=env).exit_code == 0
    sha = hashlib.sha256(KEEP).hexdigest()
    blob = StoreLayout(tmp_path / "store").blob_path(sha)
    target = tmp_path / "models"
    (target / "m" / "evil").symlink_to(blob.parent, target_is_directory=True)
    [record] = (target / ".modelsync").glob("placed-*.json")
    data = json.loads(record.read_text())
    st = blob.stat()
    data["files"][f"m/evil/{sha}"] = {
        "sha256": sha,
        "size": st.st_size,
        "mode": "hardlink",
        "inode": st.st_ino,
        "mtime_ns": st.st_mtime_ns,
    }
    record.write_text(json.dumps(data))

    again = run_cli("sync", env=env)
    assert again.exit_code == 0, again.stderr
    assert blob.read_bytes() == KEEP
    assert run_cli("verify", "--full").exit_code == 0
