"""The verified-state cache: (path, size, mtime_ns, ctime_ns, inode) → sha256, in sqlite.

It lets a no-change `sync` and a default `verify` trust a file by one stat() call: the digest
is reused only while size, mtime, ctime and inode are exactly what they were when the bytes were
hashed (dvc-data's state.py does the same). The ctime is there because anyone can put an mtime
back after writing in place (through a hardlinked placement, say) but nobody can set a ctime;
its price is that linking or unlinking a file changes it too, so whoever links a blob it vouched
for re-keys the entry (`BlobStore.relinking`), and a blob linked by others is hashed once more.
Rows of a database made before the ctime was recorded have none and never match: the cache is
only a cache, re-hashing is always safe.

Durability is tracked too, so that a download need not wait for the disk. A record made before
the bytes were known to be on disk carries the id of the boot it was made in ("pending"). In
that boot the page cache holds the verified bytes, so the record is trusted, and the next look
at it fsyncs the file (instant once the kernel has written it back) and settles it. After a
reboot (a crash, a power loss) a pending record is ignored, so the file is hashed again from
disk before anything trusts it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verified (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    boot TEXT,
    ctime_ns INTEGER
)
"""


def current_boot_id() -> str | None:
    """This boot's id (Linux), or None where the OS gives none: then every write is fsynced."""
    try:
        return BOOT_ID.read_text(encoding="ascii").strip() or None
    except OSError:
        return None


def fsync_path(path: Path) -> None:
    """Wait until the file's bytes are on disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StateCache:
    """A small sqlite database in the store; safe for several processes (sqlite's own locking)."""

    def __init__(self, path: Path, *, boot: str | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.boot = boot if boot is not None else current_boot_id()
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(verified)")}
        if "boot" not in columns:  # a store made before durability was tracked
            self._db.execute("ALTER TABLE verified ADD COLUMN boot TEXT")
        if "ctime_ns" not in columns:  # a store made before the ctime was part of the key
            with contextlib.suppress(sqlite3.OperationalError):  # another process added it
                self._db.execute("ALTER TABLE verified ADD COLUMN ctime_ns INTEGER")
        # Pending records made by this cache: a look at them in the same run (sync plans again
        # after downloading) trusts them as they are instead of waiting for the writeback.
        self._fresh: set[str] = set()

    @property
    def defers_fsync(self) -> bool:
        """Whether writers may skip fsync and record pending instead (needs a boot id)."""
        return self.boot is not None

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def lookup(self, path: Path, st: os.stat_result) -> str | None:
        """The digest recorded for `path` if its stat still matches and it can be trusted.

        A pending record of this boot is settled here (fsync, then marked on disk) unless this
        cache made it; one from an earlier boot is not trusted: the caller hashes the file again.
        """
        row = self._db.execute(
            "SELECT sha256, boot FROM verified "
            "WHERE path = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ? AND inode = ?",
            (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino),
        ).fetchone()
        if row is None:
            return None
        sha256, boot = str(row[0]), row[1]
        if boot is None:
            return sha256
        if boot != self.boot:
            return None
        if str(path) in self._fresh:
            return sha256
        try:
            fsync_path(path)
        except OSError:
            return None
        self._db.execute("UPDATE verified SET boot = NULL WHERE path = ?", (str(path),))
        return sha256

    def record(self, path: Path, st: os.stat_result, sha256: str, *, on_disk: bool = True) -> None:
        """Remember that `path`, as `st` describes it, hashed to `sha256`.

        `on_disk=False`: the bytes may still be only in the page cache (no fsync yet).
        """
        boot = None if on_disk or self.boot is None else self.boot
        if boot is None:
            self._fresh.discard(str(path))
        else:
            self._fresh.add(str(path))
        self._db.execute(
            "INSERT OR REPLACE INTO verified "
            "(path, size, mtime_ns, ctime_ns, inode, sha256, boot) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, sha256, boot),
        )

    def rekey(self, path: Path, before: os.stat_result, after: os.stat_result) -> None:
        """Carry `path`'s record from `before` to `after` when only the ctime moved (our own link
        or unlink of its inode) and the record matched `before`; pending stays pending."""
        kept = (after.st_size, after.st_mtime_ns, after.st_ino)
        if kept != (before.st_size, before.st_mtime_ns, before.st_ino):
            return
        if after.st_ctime_ns == before.st_ctime_ns:
            return
        self._db.execute(
            "UPDATE verified SET ctime_ns = ? "
            "WHERE path = ? AND size = ? AND mtime_ns = ? AND ctime_ns = ? AND inode = ?",
            (
                after.st_ctime_ns,
                str(path),
                before.st_size,
                before.st_mtime_ns,
                before.st_ctime_ns,
                before.st_ino,
            ),
        )

    def forget(self, path: Path) -> None:
        """Drop what is known about `path`."""
        self._db.execute("DELETE FROM verified WHERE path = ?", (str(path),))


@contextlib.contextmanager
def open_state(path: Path, *, boot: str | None = None) -> Iterator[StateCache]:
    """A StateCache for the block (`boot` overrides this boot's id, for tests)."""
    cache = StateCache(path, boot=boot)
    try:
        yield cache
    finally:
        cache.close()
