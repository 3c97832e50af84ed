"""models.toml and models.lock as tomllib read them, kept in the store for the next run.

A no-op `sync` spends a tenth of its time parsing TOML (tomllib is pure Python: about 13 ms for
a 50-model lock, and 5 ms to import it). The parsed document is plain data, so it is kept as
JSON, one file per project file (named by the SHA-256 of its path, so there are never more
entries than files synced), holding the SHA-256 of the text it was parsed from: an entry is
used only for exactly that text, and anything else (an edited file, a damaged or foreign
entry) is parsed again. Only the parse is kept: the document is validated on every run.

The store may be shared with other users, and a digest of a committed lock is no secret: an
entry is read only if this user owns it and nobody else may write it (else a co-user could
stand a lock of their choosing in for ours: its pins, its paths).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from modelsync import atomic

_MAX_ENTRY = 64 << 20
"""A kept parse is read only up to this size (a lock of thousands of files is far less)."""


def recall(folder: Path | None, path: Path, text: str) -> dict[str, Any] | None:
    """The document parsed from `text` (the contents of `path`) if `folder` keeps it."""
    if folder is None:
        return None
    try:
        fd = os.open(_entry(folder, path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if (
                info.st_uid != os.geteuid()
                or info.st_mode & 0o022
                or not stat.S_ISREG(info.st_mode)
            ):
                return None
            entry = json.loads(handle.read(_MAX_ENTRY))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("sha256") != _digest(text):
        return None
    data = entry.get("document")
    return data if isinstance(data, dict) else None


def remember(folder: Path | None, path: Path, text: str, data: dict[str, Any]) -> None:
    """Keep `data`, parsed from `text`, for the next run, in a store that exists (a cache
    never makes one: a run refused before it would leave it behind); never fails the run."""
    if folder is None or not folder.parent.is_dir():
        return
    try:
        encoded = json.dumps({"sha256": _digest(text), "document": data})
    except (TypeError, ValueError):  # TOML dates and times: JSON has none, so never kept
        return
    try:
        atomic.write_text(_entry(folder, path), encoded)
    except OSError:
        return


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _entry(folder: Path, path: Path) -> Path:
    where = os.path.realpath(path)
    return folder / f"{hashlib.sha256(os.fsencode(where)).hexdigest()[:32]}.json"
