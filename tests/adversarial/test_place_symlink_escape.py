"""Stale removal never follows a symlinked folder out of the target dir."""

from __future__ import annotations

import random
from pathlib import Path

from modelsync.server.runner import ServerHandle
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
    assert (model / "sub").is_symlink()
    assert not (model / "gone.bin").exists()
    assert (model / "keep.bin").read_bytes() == KEEP
