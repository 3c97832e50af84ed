"""Read and write models.lock: atomic replace, and no write at all when the bytes are equal."""

from __future__ import annotations

from pathlib import Path

from modelsync import atomic
from modelsync.errors import LockfileError
from modelsync.lockfile.model import Lockfile
from modelsync.lockfile.render import parse_lock


def read_lock(path: Path, *, display: str | None = None) -> Lockfile | None:
    """The lock at `path`, None if there is none; LockfileError if it is malformed."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise LockfileError(f"{name}: cannot read: {err}", hint="check the file") from err
    return parse_lock(text, name)


def write_lock(path: Path, text: str) -> bool:
    """Replace the lock with `text` atomically unless it holds exactly that; True if written."""
    try:
        if path.read_bytes() == text.encode("utf-8"):
            return False
    except FileNotFoundError:
        pass
    atomic.write_text(path, text)
    return True
