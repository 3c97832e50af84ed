"""In a target dir shared between users (`.modelsync` writable by the group), a co-user can
write this project's journal (its name follows from the lock's path) with lines that claim the
user's own files, which sync would then remove as stale placements. Records and journals that
another user owns are refused (exit 2, naming the file); the user's file stays."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelsync.sync.placed import journal_path, record_path
from tests.fixtures.cli import CliRunner

CO_USER = 4242


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_journal_another_user_wrote_is_refused(
    run_cli: CliRunner, tiny_project: dict[str, str]
) -> None:
    """A forged journal line names the user's notes.txt with its exact stat: sync exits 2 naming
    the journal and notes.txt is still there."""
    assert run_cli("sync", env=tiny_project).exit_code == 0
    notes = Path("models/tiny/notes.txt")
    notes.write_text("mine\n")
    st = notes.lstat()
    line = {
        "rel": "tiny/notes.txt",
        "sha256": "0" * 64,
        "size": st.st_size,
        "mode": "copy",
        "inode": st.st_ino,
        "mtime_ns": st.st_mtime_ns,
    }
    journal = journal_path(record_path(Path("models").absolute(), Path("models.lock").absolute()))
    journal.write_text(json.dumps(line) + "\n")
    os.chown(journal, CO_USER, CO_USER)
    result = run_cli("sync", env=tiny_project)
    assert result.exit_code == 2, result.stderr
    assert f"{journal}: " in result.stderr
    assert notes.read_text() == "mine\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_another_users_record_in_a_shared_target_is_still_read(
    run_cli: CliRunner, tiny_project: dict[str, str], tmp_path: Path
) -> None:
    """The record of another user's project in the same target dir only protects its files:
    this project's sync reads it and succeeds."""
    shared = Path("models").absolute()
    other = tmp_path / "other"
    other.mkdir()
    (other / "models.toml").write_text(
        f'[settings]\ntarget = "{shared}"\n\n' + Path("models.toml").read_text()
    )
    assert run_cli("-m", str(other), "sync", env=tiny_project).exit_code == 0
    theirs = record_path(shared, other / "models.lock")
    os.chown(theirs, CO_USER, CO_USER)
    result = run_cli("sync", env=tiny_project)
    assert result.exit_code == 0, result.stderr
    assert Path("models/tiny/config.json").read_text() == "{}"
