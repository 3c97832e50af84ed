"""`sync` as real processes: two at once on one store, a kill in the middle, a read-only target
and a full disk. Nothing is ever half-placed and the store stays intact."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelsync.errors import ExitCode, UsageError
from modelsync.net.retry import RetryPolicy
from modelsync.ops.gc import GcRequest, gc_store
from modelsync.ops.sync import SyncRequest, sync_project
from modelsync.ops.verify import VerifyRequest, verify_project
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive
from modelsync.sync.placed import record_path
from tests.fixtures.hub import HubRepoFactory

FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)
SHARED = random.Random(21).randbytes(2_000_000)  # noqa: S311 - reproducible test data
SHARED_SHA = hashlib.sha256(SHARED).hexdigest()


def manifest_for(folder: Path, models: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "models.toml"
    manifest.write_text(
        "".join(f'[models.{n}]\nsource = "hf://{r}"\ninclude = ["*"]\n' for n, r in models.items())
    )
    return manifest


@pytest.fixture
def env(hub: ServerHandle, tmp_path: Path) -> dict[str, str]:
    """The environment of a sync process: the hub, an isolated store, no caches to adopt from."""
    return {
        **os.environ,
        "HF_ENDPOINT": hub.endpoint,
        "MODELSYNC_STORE": str(tmp_path / "store"),
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


class Proc:
    """A `modelsync` child process whose stderr lines are collected as they come."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "modelsync", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.stdout = ""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.append(line)

    def wait_for(self, *texts: str, timeout: float = 30) -> None:
        """Until a stderr line holds one of `texts`."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines for text in texts):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                self.popen.kill()
                self.finish()
                pytest.fail(f"never saw {texts!r}: {''.join(self.lines)}")
            time.sleep(0.02)

    def close(self) -> None:
        """Kill the process if it still runs and release its pipes (after a failed test)."""
        if self.popen.stdout is None or self.popen.stdout.closed:
            return
        if self.popen.poll() is None:
            self.popen.kill()
        self.finish()

    def finish(self, timeout: float = 60) -> int:
        assert self.popen.stdout is not None
        assert self.popen.stderr is not None
        self.stdout = self.popen.stdout.read()  # a summary line or two: never fills the pipe
        code = self.popen.wait(timeout=timeout)
        self._reader.join(timeout=5)
        self.popen.stdout.close()
        self.popen.stderr.close()
        return code


def test_syncs_on_one_store_wait_then_download_once(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, env: dict[str, str]
) -> None:
    """Three syncs started while the store is busy (two of one project, one of another that
    needs the same blob): all wait, saying who holds the lock (the store's, or for the second
    run of a project, the project's); the file is downloaded once, and of the two runs of one
    project only one places it (the other, run after it, finds nothing to do)."""
    hub_repo("org/a", {"shared.bin": SHARED})
    hub_repo("org/b", {"shared.bin": SHARED, "b.txt": "b"})
    one = manifest_for(tmp_path / "one", {"a": "org/a"}).parent
    two = manifest_for(tmp_path / "two", {"b": "org/b"}).parent
    assert (
        subprocess.run(
            [sys.executable, "-m", "modelsync", "lock"], cwd=one, env=env, check=False
        ).returncode
        == 0
    )
    procs: list[Proc] = []
    try:
        with exclusive(StoreLayout(tmp_path / "store").lock_path, wait=False):
            procs = [Proc(["sync"], one, env), Proc(["sync"], one, env), Proc(["sync"], two, env)]
            for proc in procs:
                proc.wait_for("store.lock: held by pid", "models.toml: held by pid")
            assert hub.repos.counters.bytes_sent(path="shared.bin") == 0
        codes = [proc.finish() for proc in procs]
    finally:
        for proc in procs:
            proc.close()
    assert codes == [0, 0, 0], [p.lines for p in procs]
    holders = sorted(f"held by pid {os.getpid()}" in "".join(p.lines) for p in procs[:2])
    assert holders == [False, True]  # the other run of project one waited for the project
    assert f"held by pid {os.getpid()}" in "".join(procs[2].lines)
    assert hub.repos.counters.bytes_sent(path="shared.bin") == len(SHARED)
    assert sorted(" 1 placed " in p.stdout for p in procs[:2]) == [False, True], procs[0].stdout
    assert (one / "models" / "a" / "shared.bin").read_bytes() == SHARED
    assert (two / "models" / "b" / "shared.bin").read_bytes() == SHARED


def test_a_killed_sync_never_leaves_a_half_placed_file(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, env: dict[str, str]
) -> None:
    """SIGKILL while copies are being placed: every target path holds either nothing or the
    whole locked file; the next sync completes and verifies, and gc clears the leftover temp."""
    big = {f"part{i}.bin": random.Random(i).randbytes(24 << 20) for i in range(3)}  # noqa: S311
    hub_repo("org/big", big)
    folder = manifest_for(tmp_path / "p", {"big": "org/big"}).parent
    proc = Proc(["sync", "--link", "copy"], folder, env)
    proc.wait_for("placing into ")
    proc.popen.send_signal(signal.SIGKILL)
    assert proc.finish() == -signal.SIGKILL
    models = folder / "models" / "big"
    for path in models.iterdir() if models.exists() else ():
        if not path.name.startswith("."):
            assert path.read_bytes() == big[path.name], f"{path} is half-placed"
    request = SyncRequest(
        manifest=folder / "models.toml",
        store=tmp_path / "store",
        environ=env,
        retry=FAST,
        link=None,
    )
    asyncio.run(sync_project(request))
    verify_project(
        VerifyRequest(manifest=folder / "models.toml", store=tmp_path / "store", full=True)
    )
    gc_store(GcRequest(store=tmp_path / "store", grace_s=0))
    assert sorted(p.name for p in models.iterdir()) == sorted(big)  # the killed run's temp is gone


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[str]:
    """Make `folder` refuse new entries, even for root (immutable attribute); yields the error
    text the system gives."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and shutil.which("chattr"):
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        undo = ["chattr", "-i", str(folder)]
        why = os.strerror(errno.EPERM)
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
        why = os.strerror(errno.EACCES)
    try:
        try:
            (folder / "probe").touch()
        except OSError:
            pass
        else:
            pytest.skip("cannot make a folder read-only here")
        yield why
    finally:
        subprocess.run(undo, check=True)


def test_read_only_target_is_a_clear_error_and_the_store_stays_intact(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, env: dict[str, str]
) -> None:
    """A target dir that cannot take files: exit 2 naming it and the fix; the downloaded blob is
    whole in the store and nothing was placed."""
    hub_repo("org/a", {"shared.bin": SHARED})
    manifest = manifest_for(tmp_path / "p", {"a": "org/a"})
    target = tmp_path / "p" / "models"
    request = SyncRequest(manifest=manifest, store=tmp_path / "store", environ=env, retry=FAST)
    with read_only(target) as why, pytest.raises(UsageError) as caught:
        asyncio.run(sync_project(request))
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.one_line() == (
        f"{target}: cannot create files there: {why}; nothing was placed; "
        "make the target dir writable and free space on its disk (or change settings.target)"
    )
    blob = StoreLayout(tmp_path / "store").blob_path(SHARED_SHA)
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == SHARED_SHA
    assert list(target.iterdir()) == []


def test_full_disk_leaves_no_partial_target(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, env: dict[str, str]
) -> None:
    """Copies onto a full filesystem (a 256 KiB tmpfs in a private mount namespace): exit 2
    naming the file and the fix; the file that fits is placed, the one that does not is absent,
    no temp file is left and the store keeps the whole blob."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    hub_repo("org/a", {"shared.bin": SHARED, "config.json": "{}"})
    folder = manifest_for(tmp_path / "p", {"a": "org/a"}).parent
    target = folder / "models"
    target.mkdir()
    script = (
        'mount -t tmpfs -o size=256k tmpfs "$1" || exit 99; '
        '"$2" -m modelsync -q sync --link copy; echo "rc=$?"; find "$1" -type f | sort'
    )
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(target), sys.executable],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 99 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    assert lines[0] == f"rc={int(ExitCode.USAGE)}", result.stderr
    assert lines[1:] == [
        str(target / ".gitignore"),
        str(record_path(target, folder / "models.lock")),
        str(target / "a" / "config.json"),
    ]
    assert result.stderr.strip().splitlines()[-1] == (
        f"modelsync: error: {target / 'a' / 'shared.bin'}: cannot place a/shared.bin: "
        "No space left on device; make the target dir writable and free space on its disk, "
        "then run `modelsync sync`"
    )
    blob = StoreLayout(tmp_path / "store").blob_path(SHARED_SHA)
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == SHARED_SHA
