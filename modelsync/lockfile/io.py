"""Read and write models.lock: atomic replace, and no write at all when the bytes are equal."""

from __future__ import annotations

from pathlib import Path

from modelsync import atomic, toml_cache
from modelsync.errors import LockfileError
from modelsync.lockfile.model import Lockfile
from modelsync.lockfile.render import lock_document, parse_lock


def read_lock(
    path: Path, *, display: str | None = None, parsed: Path | None = None
) -> Lockfile | None:
    """The lock at `path`, None if there is none; LockfileError if it is malformed. `parsed`:
    where the TOML parse is kept between runs (toml_cache.py)."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        raise LockfileError(f"{name}: cannot read: {err}", hint="check the file") from err
    document = toml_cache.recall(parsed, path, text)
    if document is None:
        document = lock_document(text, name)
        toml_cache.remember(parsed, path, text, document)
    return parse_lock(text, name, document=document)


def write_lock(path: Path, text: str) -> bool:
    """Replace the lock with `text` atomically unless it holds exactly that; True if written."""
    try:
        if path.read_bytes() == text.encode("utf-8"):
            return False
    except FileNotFoundError:
        pass
    atomic.write_text(path, text)
    return True
