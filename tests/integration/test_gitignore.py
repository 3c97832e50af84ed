"""`<target>/.gitignore` on a real folder with the real git: when it is written and when not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from modelsync.sync.gitignore import TEXT, ignore_first_sync
from modelsync.sync.placed import RECORD_DIR


def tracked_folder(tmp_path: Path) -> Path:
    """A git work tree whose `models/` holds a tracked file."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "README.md").write_text("ours\n")
    subprocess.run(["git", "-C", str(tmp_path), "init", "-q"], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    return folder


def test_tracked_files_keep_git_in_charge(tmp_path: Path) -> None:
    """Where git tracks files in the target, nothing is written."""
    folder = tracked_folder(tmp_path)
    assert not ignore_first_sync(folder)
    assert not (folder / ".gitignore").exists()


def test_without_git_the_file_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no git on PATH there is nobody to ask: the file is written."""
    folder = tracked_folder(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert ignore_first_sync(folder)
    assert (folder / ".gitignore").read_text() == TEXT


def test_only_the_first_sync_writes_it(tmp_path: Path) -> None:
    """A target that already holds a placement record is not a first sync: nothing is written,
    and an existing `.gitignore` is never replaced."""
    folder = tmp_path / "models"
    (folder / RECORD_DIR).mkdir(parents=True)
    assert not ignore_first_sync(folder)
    assert not (folder / ".gitignore").exists()
    (folder / RECORD_DIR).rmdir()
    (folder / ".gitignore").write_text("mine\n")
    assert not ignore_first_sync(folder)
    assert (folder / ".gitignore").read_text() == "mine\n"
    (folder / ".gitignore").unlink()
    assert ignore_first_sync(folder)
    assert (folder / ".gitignore").read_text().endswith("\n*\n")
