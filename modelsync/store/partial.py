"""Partial downloads in `<store>/tmp/`: claimed by one process at a time, resumable after a crash.

A partial is named `<sha256>.<owner>.part`. Its owner holds an exclusive `flock` on it for as long
as it writes; the kernel drops that lock when the process dies, even by `kill -9`. A later run
claims an orphan by locking it and renaming it to its own name, so two processes never append
to the same file, and `gc` can tell live partials (locked) from dead ones.

Downloads run outside the store lock, so one blob is fetched by one process at a time: the
fetcher first holds `tmp/<sha256>.fetching` (`try_fetch_lock`); another run needing the same
blob waits for it and then finds the blob in the store instead of fetching it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from modelsync.atomic import fsync_dir
from modelsync.store.layout import StoreLayout

_META_SUFFIX = ".json"

# Bytes per write(2). The kernel sizes new page-cache folios by the write's length, and large
# fresh folios can cost far more to fill on VMs that hand free memory back to the host: in `perf`
# on this VM, 2 GiB written 1 MiB at a time spent up to 20x the kernel copy time of 16-32 KiB
# writes (the gap depended on the VM's memory state; 32 KiB was never worse than the others).
WRITE_SLICE = 32 << 10


def _owner_tag() -> str:
    return f"{os.getpid()}-{secrets.token_hex(4)}"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def is_in_use(path: Path) -> bool:
    """True if a live process holds the partial's lock (gc must leave it alone)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        if _try_lock(fd):
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        return True
    finally:
        os.close(fd)


@dataclass(slots=True)
class Partial:
    """An open, locked partial download owned by this process."""

    path: Path
    fd: int
    size: int
    etag: str | None

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes at the end (the file is opened O_APPEND), WRITE_SLICE at a time."""
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view[:WRITE_SLICE])
            view = view[written:]
            self.size += written  # stays true to the file even if a later write fails

    def reset(self) -> None:
        """Drop every byte received so far (a server ignored Range, or the digest was wrong)."""
        os.ftruncate(self.fd, 0)
        self.size = 0
        self.set_etag(None)

    def set_etag(self, etag: str | None) -> None:
        """Remember the validator the bytes came with, so a resume can detect a changed file."""
        if etag == self.etag:
            return
        self.etag = etag
        meta = self.path.with_name(self.path.name + _META_SUFFIX)
        if etag is None:
            meta.unlink(missing_ok=True)
        else:
            meta.write_text(json.dumps({"etag": etag}))

    def finish_into(self, blob: Path, *, fsync: bool = True) -> None:
        """Make read-only and rename into place: the blob appears whole or not at all.

        `fsync=False` leaves the bytes to the kernel's writeback; the caller then records the
        blob as pending in the state cache, which re-verifies it after a crash (state.py).
        """
        if fsync:
            os.fsync(self.fd)
        os.fchmod(self.fd, 0o444)
        blob.parent.mkdir(parents=True, exist_ok=True)
        self.path.replace(blob)
        if fsync:
            fsync_dir(blob.parent)
        self.path.with_name(self.path.name + _META_SUFFIX).unlink(missing_ok=True)

    def close(self) -> None:
        """Release the lock; a non-empty file stays for a later resume unless it became a blob."""
        if self.size == 0:
            self.path.unlink(missing_ok=True)
            self.path.with_name(self.path.name + _META_SUFFIX).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _adopt(candidate: Path, own: Path) -> Partial | None:
    try:
        fd = os.open(candidate, os.O_RDWR | os.O_APPEND)
    except FileNotFoundError:
        return None
    if not _try_lock(fd):
        os.close(fd)  # a live process is writing it
        return None
    try:
        candidate.rename(own)
    except FileNotFoundError:
        os.close(fd)
        return None
    etag: str | None = None
    meta = candidate.with_name(candidate.name + _META_SUFFIX)
    with contextlib.suppress(FileNotFoundError, ValueError, OSError):
        etag = json.loads(meta.read_text()).get("etag")
        meta.rename(own.with_name(own.name + _META_SUFFIX))
    return Partial(path=own, fd=fd, size=os.fstat(fd).st_size, etag=etag)


def _partials(layout: StoreLayout, sha256: str) -> list[tuple[int, Path]]:
    """Every partial of this blob with its size, the largest first (the one a claim takes)."""
    found = []
    for path in layout.tmp_dir.glob(layout.partial_pattern(sha256)):
        with contextlib.suppress(FileNotFoundError):
            found.append((path.stat().st_size, path))
    return sorted(found, reverse=True)


def resumable(layout: StoreLayout, sha256: str, size: int) -> int:
    """Bytes of the partial that `claim_partial` would take over now and a download of `size`
    bytes would keep (a longer one is started over); reads no content."""
    for held, path in _partials(layout, sha256):
        if not is_in_use(path):
            return held if held <= size else 0
    return 0


def try_fetch_lock(layout: StoreLayout, sha256: str) -> int | None:
    """Become the one process fetching `sha256`: a locked fd, or None while another holds it.

    The file is removed on release; a waiter that locked a removed file sees its inode differ
    from the path's and tries again later (the usual flock-and-unlink protocol)."""
    path = layout.fetch_lock_path(sha256)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if _try_lock(fd) and path.stat().st_ino == os.fstat(fd).st_ino:
            return fd
    except FileNotFoundError:
        pass
    os.close(fd)
    return None


def release_fetch_lock(layout: StoreLayout, sha256: str, fd: int) -> None:
    """Remove the fetch lock of `sha256` (still holding it, so no waiter keeps a stale one)."""
    layout.fetch_lock_path(sha256).unlink(missing_ok=True)
    os.close(fd)


def claim_partial(layout: StoreLayout, sha256: str) -> Partial:
    """Take over the largest orphaned partial of this blob, or start an empty one."""
    layout.tmp_dir.mkdir(parents=True, exist_ok=True)
    own = layout.tmp_dir / layout.partial_name(sha256, _owner_tag())
    for _size, candidate in _partials(layout, sha256):
        partial = _adopt(candidate, own)
        if partial is not None:
            return partial
    fd = os.open(own, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644)
    _try_lock(fd)  # a fresh, uniquely named file: nobody else can hold it
    return Partial(path=own, fd=fd, size=0, etag=None)
