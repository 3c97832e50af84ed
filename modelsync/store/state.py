"""The verified-state cache: (path, size, mtime_ns, inode) → sha256, in sqlite.

It lets a no-change `sync` and a default `verify` trust a file by one stat() call: the digest
is reused only while size, mtime and inode are exactly what they were when the bytes were
hashed (dvc-data's state.py does the same).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verified (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL
)
"""


class StateCache:
    """A small sqlite database in the store; safe for several processes (sqlite's own locking)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def lookup(self, path: Path, st: os.stat_result) -> str | None:
        """The digest recorded for `path` if its stat still matches, else None."""
        row = self._db.execute(
            "SELECT sha256 FROM verified "
            "WHERE path = ? AND size = ? AND mtime_ns = ? AND inode = ?",
            (str(path), st.st_size, st.st_mtime_ns, st.st_ino),
        ).fetchone()
        return None if row is None else str(row[0])

    def record(self, path: Path, st: os.stat_result, sha256: str) -> None:
        """Remember that `path`, as `st` describes it, hashed to `sha256`."""
        self._db.execute(
            "INSERT OR REPLACE INTO verified (path, size, mtime_ns, inode, sha256) "
            "VALUES (?, ?, ?, ?, ?)",
            (str(path), st.st_size, st.st_mtime_ns, st.st_ino, sha256),
        )

    def forget(self, path: Path) -> None:
        """Drop what is known about `path`."""
        self._db.execute("DELETE FROM verified WHERE path = ?", (str(path),))


@contextlib.contextmanager
def open_state(path: Path) -> Iterator[StateCache]:
    """A StateCache for the block."""
    cache = StateCache(path)
    try:
        yield cache
    finally:
        cache.close()
