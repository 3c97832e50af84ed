"""A placement journal whose last line an earlier crash cut short (no newline: a short write
on a full disk, a power cut) must not swallow the next run's first entry: a sync killed while
placing after it still leaves a journal that names every file it placed."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.sync.placed import journal_path, record_path
from tests.adversarial.test_place_crash_journal import (
    FILES,
    LEASE_HOLDER,
    next_line,
    write_manifest,
)
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory


def test_entries_after_a_torn_journal_line_are_kept(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """With a torn line left in the journal, `sync --link copy` is killed while placing model
    b after model a's files: the next sync, of a lock without model a, removes all of a's."""
    for name, files in FILES.items():
        hub_repo(f"org/{name}", files)
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    seed = tmp_path / "seed"
    write_manifest(seed, ["a", "b"])
    assert run_cli("-m", str(seed / "models.toml"), "sync", env=env).exit_code == 0
    assert run_cli("-m", str(seed / "models.toml"), "sync", env=env).exit_code == 0
    project = tmp_path / "p"
    write_manifest(project, ["a", "b"])
    assert run_cli("-m", str(project / "models.toml"), "lock", env=env).exit_code == 0
    journal = journal_path(record_path(project / "models", project / "models.lock"))
    journal.parent.mkdir(parents=True)
    journal.write_text('{"inode": 12, "mode": "copy", "rel": "a/gone.bin", "sha')  # torn

    sha_b = hashlib.sha256(FILES["b"]["b.bin"]).hexdigest()
    blob_b = tmp_path / "store" / "blobs" / "sha256" / sha_b[:2] / sha_b
    with subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, str(blob_b)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdin is not None
        assert holder.stdout is not None
        first = holder.stdout.readline()
        if first.startswith("unsupported"):
            pytest.skip(f"no file leases on this filesystem: {first.strip()}")
        assert first == "ready\n"
        with subprocess.Popen(
            [sys.executable, "-m", "modelsync", "sync", "--frozen", "--link", "copy"],
            cwd=project,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ) as sync:
            try:
                opened = next_line(holder.stdout, sync)
                assert opened == "opened\n", f"sync exited with {sync.returncode} first"
            finally:
                sync.send_signal(signal.SIGKILL)
                holder.stdin.close()
        assert sync.returncode == -signal.SIGKILL
    model_a = project / "models" / "a"
    assert sorted(p.name for p in model_a.iterdir()) == sorted(FILES["a"])

    write_manifest(project, ["b"])
    shrunk = run_cli("-m", str(project / "models.toml"), "sync", env=env)
    assert shrunk.exit_code == 0, shrunk.stderr
    assert not model_a.exists()
    assert (project / "models" / "b" / "b.bin").read_bytes() == FILES["b"]["b.bin"]
