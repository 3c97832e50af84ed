"""A cloned project's `settings.target` must not point sync at a folder that holds more than
models: the filesystem root, the user's home, the project's own folder (or one above it, where a
model named like the project lands inside it), or the blob store (or a folder holding it), where
placed files would become blobs and records. Sync refuses (exit 2) naming the setting, before
writing anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("/", "the filesystem root"),
        ("~", "your home folder"),
        (".", "the project's folder"),
        ("..", "a folder that holds the project"),
        ("$MODELSYNC_STORE", "the blob store"),
        ("$MODELSYNC_STORE/blobs", "inside the blob store"),
        ("$STORE_PARENT", "a folder that holds the blob store"),
    ],
)
def test_sync_refuses_a_target_that_is_not_a_folder_of_its_own(
    run_cli: CliRunner, tiny_project: dict[str, str], tmp_path: Path, target: str, why: str
) -> None:
    """Sync exits 2 naming settings.target and why, and writes no file anywhere."""
    home = tmp_path / "home"
    home.mkdir()
    project = tmp_path / "proj"
    project.mkdir()
    store = Path(os.environ["MODELSYNC_STORE"])
    store_parent = tmp_path / "elsewhere"
    text = Path("models.toml").read_text()
    (project / "models.toml").write_text(f'[settings]\ntarget = "{target}"\n\n{text}')
    env = {
        **tiny_project,
        "HOME": str(home),
        "MODELSYNC_STORE": str(store_parent / "store") if "PARENT" in target else str(store),
        "STORE_PARENT": str(store_parent),
    }
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run_cli("-m", str(project), "sync", env=env)
    assert result.exit_code == 2, result.stderr
    assert "settings.target" in result.stderr
    assert why in result.stderr
    assert not (project / ".gitignore").exists()
    assert not list(project.parent.glob("*/tiny"))
    assert list(home.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert not Path("/tiny").exists()
