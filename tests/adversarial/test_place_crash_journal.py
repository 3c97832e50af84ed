"""A sync killed with SIGKILL in the middle of placing copies: what it placed so far is
recorded (journaled before each rename), so a later, smaller lock still removes it."""

from __future__ import annotations

import hashlib
import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import pytest

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

FILES = {
    "a": {f"a{i}.bin": random.Random(50 + i).randbytes(30_000) for i in range(3)},  # noqa: S311
    "b": {"b.bin": random.Random(59).randbytes(30_000)},  # noqa: S311
}

# Holds a write lease on one file: whoever opens it blocks (up to lease-break-time) and this
# process prints "opened" when that happens, so the test knows exactly where sync is.
LEASE_HOLDER = """
import fcntl, os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGIO})
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
except OSError as err:
    print("unsupported", err, flush=True)
    sys.exit(0)
print("ready", flush=True)
signal.sigwait({signal.SIGIO})
print("opened", flush=True)
sys.stdin.read()
"""


def write_manifest(folder: Path, models: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.toml").write_text(
        "".join(f'[models.{m}]\nsource = "hf://org/{m}"\ninclude = ["*"]\n' for m in models)
    )


def next_line(out: IO[str], other: subprocess.Popen[Any], timeout: float = 30) -> str:
    """The next line of `out`, or "" once `other` has exited or `timeout` has passed."""
    deadline = time.monotonic() + timeout
    while other.poll() is None and time.monotonic() < deadline:
        if select.select([out], [], [], 0.05)[0]:
            return out.readline()
    return ""


def locked_project(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> tuple[Path, dict[str, str]]:
    """Models a and b on the hub, their blobs already in the store (and settled), and a
    project locking both, not synced yet; returns the project and the environment."""
    for name, files in FILES.items():
        hub_repo(f"org/{name}", files)
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    seed = tmp_path / "seed"  # another project brings every blob into the store first
    write_manifest(seed, ["a", "b"])
    assert run_cli("-m", str(seed / "models.toml"), "sync", env=env).exit_code == 0
    # A second look settles the blobs' deferred fsync: the killed run opens b's blob only to
    # copy it.
    assert run_cli("-m", str(seed / "models.toml"), "sync", env=env).exit_code == 0
    project = tmp_path / "p"
    write_manifest(project, ["a", "b"])
    assert run_cli("-m", str(project / "models.toml"), "lock", env=env).exit_code == 0
    return project, env


def kill_sync_placing_b(project: Path, store: Path, env: dict[str, str]) -> None:
    """Run `sync --frozen --link copy` in `project` and SIGKILL it when it opens model b's
    blob to copy it, after model a's files are placed (a file lease on the blob says when);
    skips where the filesystem has no leases."""
    sha_b = hashlib.sha256(FILES["b"]["b.bin"]).hexdigest()
    blob_b = store / "blobs" / "sha256" / sha_b[:2] / sha_b
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
                opened = next_line(holder.stdout, sync)  # then sync waits to copy b's blob
                assert opened == "opened\n", f"sync exited with {sync.returncode} first"
            finally:
                sync.send_signal(signal.SIGKILL)
                holder.stdin.close()
        assert sync.returncode == -signal.SIGKILL


def test_files_placed_before_a_kill_are_removed_when_the_lock_shrinks(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """`sync --link copy` is killed while model b's file is being placed, after model a's files
    were placed: the next sync, of a lock without model a, removes a's files and places b."""
    project, env = locked_project(run_cli, hub, hub_repo, tmp_path)
    kill_sync_placing_b(project, tmp_path / "store", env)
    model_a = project / "models" / "a"
    assert sorted(p.name for p in model_a.iterdir()) == sorted(FILES["a"])
    assert not (project / "models" / "b" / "b.bin").exists()

    write_manifest(project, ["b"])
    shrunk = run_cli("-m", str(project / "models.toml"), "sync", env=env)
    assert shrunk.exit_code == 0, shrunk.stderr
    assert not model_a.exists()
    assert (project / "models" / "b" / "b.bin").read_bytes() == FILES["b"]["b.bin"]
