"""A placement journal whose last line an earlier crash cut short (no newline: a short write
on a full disk, a power cut) must not swallow the next run's first entry: a sync killed while
placing after it still leaves a journal that names every file it placed."""

from __future__ import annotations

from pathlib import Path

from modelsync.server.runner import ServerHandle
from modelsync.sync.placed import journal_path, record_path
from tests.adversarial.test_place_crash_journal import (
    FILES,
    kill_sync_placing_b,
    locked_project,
    write_manifest,
)
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory


def test_entries_after_a_torn_journal_line_are_kept(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """With a torn line left in the journal, `sync --link copy` is killed while placing model
    b after model a's files: the next sync, of a lock without model a, removes all of a's."""
    project, env = locked_project(run_cli, hub, hub_repo, tmp_path)
    journal = journal_path(record_path(project / "models", project / "models.lock"))
    journal.parent.mkdir(parents=True)
    journal.write_text('{"inode": 12, "mode": "copy", "rel": "a/gone.bin", "sha')  # torn
    kill_sync_placing_b(project, tmp_path / "store", env)
    model_a = project / "models" / "a"
    assert sorted(p.name for p in model_a.iterdir()) == sorted(FILES["a"])

    write_manifest(project, ["b"])
    shrunk = run_cli("-m", str(project / "models.toml"), "sync", env=env)
    assert shrunk.exit_code == 0, shrunk.stderr
    assert not model_a.exists()
    assert (project / "models" / "b" / "b.bin").read_bytes() == FILES["b"]["b.bin"]
