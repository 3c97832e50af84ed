"""A cloned project can commit symlinks where sync keeps its records: `models/.modelsync` to a
folder outside (whose files a shell sources, like ~/.bashrc.d: the record holds lock paths,
which may read `$(…)`), or the journal, whose name follows from the lock's path (predictable
on a CI runner), to a file outside that sync would append to. Sync refuses (exit 2) naming
the symlink, and writes nothing outside the target dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsync.sync.placed import journal_path, record_path
from tests.fixtures.cli import CliRunner


@pytest.mark.parametrize("what", ["folder", "journal", "record"])
def test_sync_never_writes_records_through_a_symlink(
    run_cli: CliRunner, tiny_project: dict[str, str], tmp_path: Path, what: str
) -> None:
    """Exit 2 naming the symlink; the folder or file it points at is left as it was."""
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim"
    victim.write_text("keep\n")
    record = record_path(Path("models").absolute(), Path("models.lock").absolute())
    record.parent.parent.mkdir()
    if what == "folder":
        link, points_to = record.parent, outside
    else:
        record.parent.mkdir()
        link = journal_path(record) if what == "journal" else record
        points_to = victim
    link.symlink_to(points_to)
    result = run_cli("sync", env=tiny_project)
    assert result.exit_code == 2, result.stderr
    assert f"{link}: " in result.stderr
    assert "symlink" in result.stderr
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert victim.read_text() == "keep\n"
