"""The inter-process store lock: one mutation of the store at a time (design.md section 10).

It is held only to admit blobs and to place, never for a download (design.md section 3).
A second run waits, saying who holds the lock (pid and command), or with `--no-wait` exits 6;
with `--wait-timeout S` it waits at most S seconds, then exits 6 the same way.
The lock is an OS-level `flock` on the lock file, so a crashed holder never leaves it stuck
(the `filelock` package takes the same lock, which tests use to play a holder; importing it
cost a no-op sync 65 ms and more, as it pulls in asyncio and inspect).

The project lock (`project_lock`) serializes `lock` and `sync` runs of one project the same
way, for the whole run. It lives in the store, keyed by the manifest's real path, not beside
models.toml: nothing appears in the user's repository (no file to ignore or to commit), and
overlapping runs already share the store. Runs of one project with different stores do not
see each other's project lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from modelsync.errors import BusyError
from modelsync.log import get_logger

log = get_logger(__name__)


def _holder_file(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder")


UNKNOWN_HOLDER = "another modelsync run"
HOLDER_PATIENCE_S = 0.5
"""A holder writes its `.holder` note just after taking the lock: a run that finds the lock
taken waits this long for the note before naming the holder unknown."""


def _read_holder(lock_path: Path) -> str | None:
    try:
        info = json.loads(_holder_file(lock_path).read_text())
    except (OSError, ValueError):
        return None
    return f"pid {info.get('pid')} ({info.get('command', '?')})"


def _describe_holder(lock_path: Path, patience: float = HOLDER_PATIENCE_S) -> str:
    deadline = time.monotonic() + patience
    while (holder := _read_holder(lock_path)) is None and time.monotonic() < deadline:
        time.sleep(0.02)
    return holder or UNKNOWN_HOLDER


@contextlib.asynccontextmanager
async def unguarded() -> AsyncIterator[None]:
    """In place of the store lock where the caller holds it already (or there is no store)."""
    yield


def _busy(lock_path: Path | str, holder: str, timeout: float | None = None) -> BusyError:
    if timeout is None:
        return BusyError(
            f"{lock_path}: held by {holder}",
            hint="wait for it to finish, or run again without --no-wait to queue behind it",
        )
    return BusyError(
        f"{lock_path}: still held by {holder} after {timeout:g} s (--wait-timeout)",
        hint="run again later, or with a longer --wait-timeout",
    )


def _open(lock_path: Path) -> int:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)


def _try_lock(fd: int) -> bool:
    """Take the lock of `fd` if it is free (flock: per open file, so two opens in one process
    exclude each other as two processes do)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def _holding(lock_path: Path, fd: int) -> Iterator[None]:
    """Say who holds the lock while the block runs; closing `fd` releases it."""
    try:
        program = Path(sys.argv[0]).name
        program = "modelsync" if program == "__main__.py" else program  # python -m modelsync
        command = " ".join([program, *sys.argv[1:]])
        _holder_file(lock_path).write_text(json.dumps({"pid": os.getpid(), "command": command}))
        yield
    finally:
        _holder_file(lock_path).unlink(missing_ok=True)
        os.close(fd)


@contextlib.contextmanager
def exclusive(
    lock_path: Path,
    *,
    wait: bool,
    wait_s: float | None = None,
    poll: float = 0.25,
    subject: str | None = None,
    event: str = "store.lock_wait",
) -> Iterator[None]:
    """Hold `lock_path` for the block; wait for it (logging the holder; at most `wait_s`
    seconds when given) or raise BusyError. `subject` names it in messages (default: the
    path)."""
    name = subject or lock_path
    fd = _open(lock_path)
    with contextlib.ExitStack() as unless_taken:
        unless_taken.callback(os.close, fd)
        if not _try_lock(fd):
            holder = _describe_holder(lock_path)
            if not wait:
                raise _busy(name, holder)
            log.info(event, lock=str(name), holder=holder, timeout=wait_s)
            deadline = None if wait_s is None else time.monotonic() + wait_s
            while not _try_lock(fd):
                if deadline is not None and time.monotonic() >= deadline:
                    raise _busy(name, _describe_holder(lock_path, 0), wait_s)
                time.sleep(poll)
        unless_taken.pop_all()
    with _holding(lock_path, fd):
        yield


def project_lock(
    store: Path, manifest: Path, *, wait: bool, wait_s: float | None = None
) -> contextlib.AbstractContextManager[None]:
    """The project lock of `manifest`: `<store>/projects.d/<digest of its real path>.lock`."""
    real = manifest.resolve()
    key = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]
    path = store / "projects.d" / f"{key}.lock"
    subject = f"project {real}"
    return exclusive(path, wait=wait, wait_s=wait_s, subject=subject, event="project.lock_wait")


@contextlib.asynccontextmanager
async def exclusive_async(
    lock_path: Path, *, wait: bool, wait_s: float | None = None, poll: float = 0.05
) -> AsyncIterator[None]:
    """`exclusive` for the event loop: it waits in asyncio.sleep, so transfers keep running
    (also other tasks of this process, which hold the lock through their own open of it)."""
    import asyncio  # noqa: PLC0415 - here: a no-op sync takes the project lock without a loop

    fd = _open(lock_path)
    since: float | None = None
    logged = False
    with contextlib.ExitStack() as unless_taken:
        unless_taken.callback(os.close, fd)
        while not _try_lock(fd):
            if not wait:
                raise _busy(lock_path, _describe_holder(lock_path, 0))
            now = time.monotonic()
            since = now if since is None else since
            if not logged:  # once the holder's note is there (or has had its time)
                holder = _read_holder(lock_path)
                if holder is not None or now - since >= HOLDER_PATIENCE_S:
                    holder = holder or UNKNOWN_HOLDER
                    log.info("store.lock_wait", lock=str(lock_path), holder=holder, timeout=wait_s)
                    logged = True
            if wait_s is not None and now - since >= wait_s:
                raise _busy(lock_path, _describe_holder(lock_path, 0), wait_s)
            await asyncio.sleep(poll)
        unless_taken.pop_all()
    with _holding(lock_path, fd):
        yield
