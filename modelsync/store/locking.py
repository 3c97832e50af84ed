"""The inter-process store lock: one mutation of the store at a time (design.md section 10).

It is held only to admit blobs and to place, never for a download (design.md section 3).
A second run waits, saying who holds the lock (pid and command), or with `--no-wait` exits 6;
with `--wait-timeout S` it waits at most S seconds, then exits 6 the same way.
The lock is an OS-level lock via filelock, so a crashed holder never leaves it stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from modelsync.errors import BusyError

if TYPE_CHECKING:  # filelock is imported where a lock is taken: a no-op sync takes none
    from filelock import FileLock

log = structlog.get_logger(__name__)


def _holder_file(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder")


def _describe_holder(lock_path: Path) -> str:
    try:
        info = json.loads(_holder_file(lock_path).read_text())
    except (OSError, ValueError):
        return "another modelsync run"
    return f"pid {info.get('pid')} ({info.get('command', '?')})"


@contextlib.asynccontextmanager
async def unguarded() -> AsyncIterator[None]:
    """In place of the store lock where the caller holds it already (or there is no store)."""
    yield


def _busy(lock_path: Path, holder: str, timeout: float | None = None) -> BusyError:
    if timeout is None:
        return BusyError(
            f"{lock_path}: held by {holder}",
            hint="wait for it to finish, or run again without --no-wait to queue behind it",
        )
    return BusyError(
        f"{lock_path}: still held by {holder} after {timeout:g} s (--wait-timeout)",
        hint="run again later, or with a longer --wait-timeout",
    )


@contextlib.contextmanager
def _holding(lock_path: Path, lock: FileLock) -> Iterator[None]:
    try:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        _holder_file(lock_path).write_text(json.dumps({"pid": os.getpid(), "command": command}))
        yield
    finally:
        _holder_file(lock_path).unlink(missing_ok=True)
        lock.release()


@contextlib.contextmanager
def exclusive(
    lock_path: Path, *, wait: bool, wait_s: float | None = None, poll: float = 0.25
) -> Iterator[None]:
    """Hold `lock_path` for the block; wait for it (logging the holder; at most `wait_s`
    seconds when given) or raise BusyError."""
    from filelock import FileLock, Timeout  # noqa: PLC0415 - see TYPE_CHECKING above

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _describe_holder(lock_path)
        if not wait:
            raise _busy(lock_path, holder) from None
        log.info("store.lock_wait", lock=str(lock_path), holder=holder, timeout=wait_s)
        try:
            lock.acquire(timeout=-1 if wait_s is None else wait_s, poll_interval=poll)
        except Timeout:
            raise _busy(lock_path, _describe_holder(lock_path), wait_s) from None
    with _holding(lock_path, lock):
        yield


@contextlib.asynccontextmanager
async def exclusive_async(
    lock_path: Path, *, wait: bool, wait_s: float | None = None, poll: float = 0.05
) -> AsyncIterator[None]:
    """`exclusive` for the event loop: it waits in asyncio.sleep, so transfers keep running
    (also other tasks of this process, which hold the lock through their own FileLock)."""
    from filelock import FileLock, Timeout  # noqa: PLC0415 - see TYPE_CHECKING above

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    since: float | None = None
    while True:
        try:
            lock.acquire(timeout=0)
            break
        except Timeout:
            if not wait:
                raise _busy(lock_path, _describe_holder(lock_path)) from None
            now = time.monotonic()
            if since is None:
                holder = _describe_holder(lock_path)
                log.info("store.lock_wait", lock=str(lock_path), holder=holder, timeout=wait_s)
                since = now
            elif wait_s is not None and now - since >= wait_s:
                raise _busy(lock_path, _describe_holder(lock_path), wait_s) from None
            await asyncio.sleep(poll)
    with _holding(lock_path, lock):
        yield
