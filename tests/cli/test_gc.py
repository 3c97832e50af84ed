"""`modelsync gc` on the command line: the dry run says what it would remove and how many bytes
it would free; a project whose lock is gone is reported, and forgotten only when asked."""

from __future__ import annotations

import shutil
from pathlib import Path

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory


def test_gc_dry_run_then_gc(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """After a project is deleted, `gc` reports its lock missing and keeps its blob;
    `gc --forget-missing --dry-run` names the blob (path, size, repo/path) and the bytes to free
    without removing anything; `gc --forget-missing` frees them; then `gc` has nothing to do."""
    hub_repo("org/tiny", {"weights.bin": b"w" * 8192})
    project = tmp_path / "project"
    project.mkdir()
    manifest = project / "models.toml"
    manifest.write_text('[models.tiny]\nsource = "hf://org/tiny"\ninclude = ["*"]\n')
    env = {"HF_ENDPOINT": hub.endpoint, "OLLAMA_MODELS": str(tmp_path / "none")}
    assert run_cli("-m", str(manifest), "sync", "--link", "copy", env=env).exit_code == 0
    shutil.rmtree(project)
    store = tmp_path / "store"
    kept = run_cli("gc")
    assert kept.exit_code == 0
    missing = (
        f"  missing lock              {project / 'models.lock'} (moved or deleted? its blobs are "
        "kept; sync it where it is now, then `modelsync gc --forget-missing` frees what nothing "
        "else uses)"
    )
    totals = (
        f"freed 0 B in {store}: 0 blobs, 0 temp files; 1 blobs kept for 0 registered locks "
        "and 1 missing ones"
    )
    assert kept.stdout.splitlines() == [missing, totals]
    dry = run_cli("gc", "--forget-missing", "--dry-run")
    assert dry.exit_code == 0
    lines = dry.stdout.splitlines()
    assert lines[1] == f"  forget lock               {project / 'models.lock'} (no longer exists)"
    assert lines[2] == (
        f"would free 8.0 KiB in {store}: 1 blobs, 0 temp files; 0 blobs kept for 0 registered locks"
    )
    blobs = [p for p in (store / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1
    assert lines[0] == f"  unreferenced               {blobs[0]} (8.0 KiB): org/tiny/weights.bin"
    done = run_cli("gc", "--forget-missing", "--json")
    report = done.json_lines()[-1]
    assert (report["command"], report["freed"], report["dry_run"]) == ("gc", 8192, False)
    again = run_cli("gc")
    assert again.stdout == (
        f"freed 0 B in {store}: 0 blobs, 0 temp files; 0 blobs kept for 0 registered locks\n"
    )
