"""The inter-process store lock: one mutating run at a time per store (design.md section 10).

A second run waits, saying who holds the lock (pid and command), or with `--no-wait` exits 6.
The lock is an OS-level lock via filelock, so a crashed holder never leaves it stuck.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import structlog
from filelock import FileLock, Timeout

from modelsync.errors import BusyError

log = structlog.get_logger(__name__)


def _holder_file(lock_path: Path) -> Path:
    return lock_path.with_name(lock_path.name + ".holder")


def _describe_holder(lock_path: Path) -> str:
    try:
        info = json.loads(_holder_file(lock_path).read_text())
    except (OSError, ValueError):
        return "another modelsync run"
    return f"pid {info.get('pid')} ({info.get('command', '?')})"


@contextlib.contextmanager
def exclusive(lock_path: Path, *, wait: bool, poll: float = 0.25) -> Iterator[None]:
    """Hold `lock_path` for the block; wait for it (logging the holder) or raise BusyError."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        holder = _describe_holder(lock_path)
        if not wait:
            raise BusyError(
                f"{lock_path}: held by {holder}",
                hint="wait for it to finish, or run again without --no-wait to queue behind it",
            ) from None
        log.info("lock_wait", lock=str(lock_path), holder=holder)
        lock.acquire(poll_interval=poll)
    try:
        command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
        _holder_file(lock_path).write_text(json.dumps({"pid": os.getpid(), "command": command}))
        yield
    finally:
        _holder_file(lock_path).unlink(missing_ok=True)
        lock.release()
