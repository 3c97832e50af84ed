"""Partial downloads in `<store>/tmp/`: claimed by one process at a time, resumable after a crash.

A partial is named `<sha256>.<owner>.part`. Its owner holds an exclusive `flock` on it for as long
as it writes; the kernel drops that lock when the process dies, even by `kill -9`. A later run
claims an orphan by locking it and renaming it to its own name, so two processes never append
to the same file, and `gc` can tell live partials (locked) from dead ones.

Downloads run outside the store lock, so one blob is fetched by one process at a time: the
fetcher first holds `tmp/<sha256>.fetching` (`try_fetch_lock`); another run needing the same
blob waits for it and then finds the blob in the store instead of fetching it again.

A partial downloaded in parallel byte ranges is sized to the whole file at once and written
out of order; its journal `<partial>.parts` says which bytes are there: one `start end` line
(bytes [start, end)) appended after each slot's write returned. The journal is not fsynced:
after `kill -9` the page cache holds both the bytes and the line; after a power cut a line may
outlive its bytes, which the final SHA-256 gate catches (the bytes are discarded and fetched
again). A partial without a journal holds its first `st_size` bytes, as before.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelsync.atomic import fsync_dir
from modelsync.store.layout import StoreLayout

_META_SUFFIX = ".json"
PARTS_SUFFIX = ".parts"
_COMPACT_LINES = 4096
"""Journal lines after which it is rewritten as its merged spans (one line per MiB otherwise)."""

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


class Spans:
    """Disjoint, sorted byte spans [start, end) of a file: which bytes a partial holds."""

    def __init__(self, spans: list[tuple[int, int]] | None = None) -> None:
        self._spans: list[tuple[int, int]] = []
        for start, end in spans or []:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        """Mark [start, end) as held, merging with the spans it touches."""
        if end <= start:
            return
        spans = self._spans
        first = bisect.bisect_left(spans, (start,))
        if first and spans[first - 1][1] >= start:
            first -= 1
        last = first
        while last < len(spans) and spans[last][0] <= end:
            start, end = min(start, spans[last][0]), max(end, spans[last][1])
            last += 1
        spans[first:last] = [(start, end)]

    def prefix(self) -> int:
        """Bytes held from offset 0 without a gap."""
        return self._spans[0][1] if self._spans and self._spans[0][0] == 0 else 0

    def total(self) -> int:
        """Bytes held."""
        return sum(b - a for a, b in self._spans)

    def holes(self, size: int) -> list[tuple[int, int]]:
        """The spans of [0, size) not held, in order."""
        holes, at = [], 0
        for a, b in self._spans:
            if a > at:
                holes.append((at, min(a, size)))
            at = max(at, b)
        if at < size:
            holes.append((at, size))
        return [(a, b) for a, b in holes if a < b]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self._spans)


def parse_journal(text: str, size: int) -> Spans:
    """The spans a journal lists, cut to the file's `size`; a torn or foreign line is skipped."""
    spans = Spans()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and all(f.isascii() and f.isdigit() for f in fields):
            start, end = int(fields[0]), int(fields[1])
            spans.add(start, min(end, size))
    return spans


def _journal_path(path: Path) -> Path:
    return path.with_name(path.name + PARTS_SUFFIX)


def _read_journal(path: Path, size: int) -> Spans | None:
    try:
        text = _journal_path(path).read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        return None
    return parse_journal(text, size)


@dataclass(slots=True)
class Partial:
    """An open, locked partial download owned by this process."""

    path: Path
    fd: int
    size: int
    """Bytes held from offset 0 without a gap (the whole file when there is no journal)."""
    etag: str | None
    spans: Spans | None = None
    """With a journal (parallel parts): every byte span held; None: the first `size` bytes."""
    _journal: int | None = None
    _lines: int = 0

    @property
    def held(self) -> int:
        """Bytes held, wherever they are in the file."""
        return self.spans.total() if self.spans is not None else self.size

    def write(self, data: bytes | memoryview) -> None:
        """Append bytes after the first `size` bytes, WRITE_SLICE at a time."""
        view = memoryview(data)
        while view:
            written = os.pwrite(self.fd, view[:WRITE_SLICE], self.size)
            view = view[written:]
            self.size += written  # stays true to the file even if a later write fails

    def start_parts(self, total: int) -> None:
        """Switch to parallel parts: journal the bytes held so far, then size the file to
        `total` (journal first: a sized file without one would pass for a complete one)."""
        if self.spans is not None:
            return
        self.spans = Spans([(0, self.size)])
        self._open_journal(truncate=True)
        if self.size:
            self._append(0, self.size)
        os.ftruncate(self.fd, total)

    def write_at(self, data: memoryview, offset: int) -> None:
        """Write bytes at `offset`, then journal them (only written bytes are ever listed)."""
        assert self.spans is not None, "start_parts() first"
        done = 0
        try:
            while done < len(data):
                done += os.pwrite(self.fd, data[done : done + WRITE_SLICE], offset + done)
        finally:
            if done:
                self.spans.add(offset, offset + done)
                self._append(offset, offset + done)
                self.size = self.spans.prefix()

    def stop_parts(self) -> None:
        """Back to one stream: keep the bytes held from offset 0, drop the rest and the journal."""
        if self.spans is None:
            return
        self.size = self.spans.prefix()
        os.ftruncate(self.fd, self.size)
        self._drop_journal()

    def _open_journal(self, *, truncate: bool) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | (os.O_TRUNC if truncate else 0)
        self._journal = os.open(_journal_path(self.path), flags, 0o644)

    def _append(self, start: int, end: int) -> None:
        if self._journal is None:
            self._open_journal(truncate=False)
        assert self._journal is not None
        self._lines += 1
        if self._lines > _COMPACT_LINES:
            self._compact()
        else:
            os.write(self._journal, f"{start} {end}\n".encode("ascii"))

    def _compact(self) -> None:
        """Rewrite the journal as its merged spans (temp + rename: never a torn journal)."""
        assert self.spans is not None
        journal = _journal_path(self.path)
        temp = journal.with_name(journal.name + ".tmp")
        temp.write_text("".join(f"{a} {b}\n" for a, b in self.spans), encoding="ascii")
        temp.replace(journal)
        if self._journal is not None:
            os.close(self._journal)
        self._open_journal(truncate=False)
        self._lines = len(list(self.spans))

    def _drop_journal(self) -> None:
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
        _journal_path(self.path).unlink(missing_ok=True)
        self.spans = None
        self._lines = 0

    def reset(self) -> None:
        """Drop every byte received so far (a server ignored Range, or the digest was wrong)."""
        self._drop_journal()
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
        self._drop_journal()

    def close(self) -> None:
        """Release the lock; a partial holding bytes stays for a later resume unless it became
        a blob."""
        if self._journal is not None:
            with contextlib.suppress(OSError):
                os.close(self._journal)
            self._journal = None
        if self.held == 0:
            self.path.unlink(missing_ok=True)
            self.path.with_name(self.path.name + _META_SUFFIX).unlink(missing_ok=True)
            _journal_path(self.path).unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _adopt(candidate: Path, own: Path) -> Partial | None:
    try:
        fd = os.open(candidate, os.O_RDWR)
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
    size = os.fstat(fd).st_size
    with contextlib.suppress(FileNotFoundError):
        _journal_path(candidate).rename(_journal_path(own))
    spans = _read_journal(own, size)
    if spans is None:
        return Partial(path=own, fd=fd, size=size, etag=etag)
    return Partial(path=own, fd=fd, size=spans.prefix(), etag=etag, spans=spans)


def _held(path: Path) -> int:
    """Bytes a partial holds: its journal's total, else its size (reads no content)."""
    size = path.stat().st_size
    spans = _read_journal(path, size)
    return size if spans is None else spans.total()


def _partials(layout: StoreLayout, sha256: str) -> list[tuple[int, Path]]:
    """Every partial of this blob with the bytes it holds, the most first (a claim takes it)."""
    found = []
    for path in layout.tmp_dir.glob(layout.partial_pattern(sha256)):
        with contextlib.suppress(FileNotFoundError):
            found.append((_held(path), path))
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
    fd = os.open(own, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    _try_lock(fd)  # a fresh, uniquely named file: nobody else can hold it
    return Partial(path=own, fd=fd, size=0, etag=None)
