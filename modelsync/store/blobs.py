"""The blob store: read-only files named by their SHA-256, written once, atomically.

A blob enters only after its bytes hashed to its name: from a download (`fetch.download`) or,
here, adopted from a file already on this machine (a Hugging Face or Ollama cache, a placed
target): hardlinked into `tmp/` when the filesystem allows (zero bytes copied), else copied,
then hashed, then renamed into `blobs/`. The stat cache (`state.db`) remembers every blob's
(size, mtime, ctime, inode), so later runs trust an unchanged blob by one stat() call. Bytes
found bad are moved to `quarantine/`, never deleted: a mistake in judging them loses nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelsync.atomic import fsync_dir
from modelsync.digest import aligned_buffer, sha256_file
from modelsync.log import get_logger
from modelsync.store.layout import StoreLayout
from modelsync.store.state import StateCache, fsync_path

log = get_logger(__name__)

ADOPT_SUFFIX = ".adopt"


class Readable(Protocol):
    """A binary source read into a buffer (a raw file, a tar member)."""

    def readinto(self, buffer: memoryview, /) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Adopted:
    """A blob taken from a local file: how (hardlink or copy) and from where."""

    sha256: str
    source: Path
    how: str


@dataclass(frozen=True, slots=True)
class BlobStore:
    """One store's blobs and its stat cache."""

    layout: StoreLayout
    state: StateCache

    def path(self, sha256: str) -> Path:
        """Where the blob of `sha256` lives (present or not)."""
        return self.layout.blob_path(sha256)

    def stat(self, sha256: str) -> os.stat_result | None:
        """The blob's stat, or None when the store lacks it."""
        try:
            return self.path(sha256).stat()
        except FileNotFoundError:
            return None

    def trusted(self, sha256: str, st: os.stat_result) -> bool:
        """Whether the stat cache vouches that the blob, as `st` sees it, hashes to its name."""
        return self.state.lookup(self.path(sha256), st) == sha256

    def hash(self, sha256: str, st: os.stat_result) -> str:
        """Hash the blob; a match is remembered in the stat cache."""
        path = self.path(sha256)
        actual = sha256_file(path)
        if actual == sha256:
            # Within one boot these bytes may have come from the page cache: on disk only
            # once fsynced (the next lookup does that, or now where boots are not tracked).
            if not self.state.defers_fsync:
                fsync_path(path)
            self.state.record(path, st, sha256, on_disk=not self.state.defers_fsync)
        else:
            self.state.forget(path)
        return actual

    def remember(self, sha256: str, *, on_disk: bool = False) -> None:
        """Record a blob that was just verified (downloaded or adopted) in the stat cache;
        `on_disk` when it was fsynced, else it is settled on a later look (state.py)."""
        path = self.path(sha256)
        self.state.record(path, path.stat(), sha256, on_disk=on_disk)

    def quarantine(self, sha256: str) -> Path | None:
        """Move a blob whose bytes were found bad to `quarantine/<sha256>.<UTC time>-<random>`
        (a unique name: the same blob may go bad twice); None if it was already gone."""
        path = self.path(sha256)
        folder = self.layout.quarantine_dir
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        dest = folder / f"{sha256}.{stamp}-{secrets.token_hex(4)}"
        try:
            path.rename(dest)
        except FileNotFoundError:
            return None
        finally:
            self.state.forget(path)
        fsync_dir(folder)
        fsync_dir(path.parent)
        return dest

    @contextlib.contextmanager
    def relinking(self, *shas: str) -> Iterator[None]:
        """Around our own link or unlink of blobs' inodes: that changes only their ctime (and
        link count), so what the cache knew of each right before still holds right after."""
        before = {sha256: st for sha256 in shas if (st := self.stat(sha256)) is not None}
        try:
            yield
        finally:
            for sha256, st in before.items():
                after = self.stat(sha256)
                if after is not None:
                    self.state.rekey(self.path(sha256), st, after)

    def adopt(self, source: Path, sha256: str, size: int) -> Adopted | None:
        """Bring `source` into the store as blob `sha256` if its bytes hash to that name.

        Returns None, changing nothing, when the file is missing, of another size or other
        bytes. A hardlink is tried first (same filesystem: no bytes copied), else a copy.
        """
        try:
            if source.stat().st_size != size:
                return None
        except OSError:
            return None
        self.layout.tmp_dir.mkdir(parents=True, exist_ok=True)
        temp = self.layout.tmp_dir / f"{sha256}.{os.getpid()}-{secrets.token_hex(4)}{ADOPT_SUFFIX}"
        try:
            try:
                os.link(source, temp)
                how = "hardlink"
                actual = sha256_file(temp)
            except OSError:
                how = "copy"
                actual = _copy_hashing(source, temp)
            if actual != sha256:
                log.warning(
                    "store.adopt_mismatch", source=str(source), expected=sha256, actual=actual
                )
                return None
            with contextlib.suppress(OSError):  # another user's hardlinked file: leave its mode
                temp.chmod(0o444)
            blob = self.path(sha256)
            blob.parent.mkdir(parents=True, exist_ok=True)
            temp.replace(blob)
            fsync_dir(blob.parent)
        except OSError as err:
            log.warning("store.adopt_failed", source=str(source), error=str(err))
            return None
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        self.remember(sha256, on_disk=how == "copy")  # the copy was fsynced; a link may not be
        return Adopted(sha256, source, how)

    def admit_stream(
        self,
        src: Readable,
        sha256: str,
        size: int,
        *,
        guard: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    ) -> tuple[str, int]:
        """Copy `src` into `tmp/`, hashing as it goes, and rename it into the store as blob
        `sha256` (under `guard`: the store lock) only when it held exactly `size` bytes that
        hash to that name; else nothing changes. Reads at most `size + 1` bytes: a source that
        claims less than it holds is caught without reading the rest. Returns the SHA-256 and
        length of what was read."""
        self.layout.tmp_dir.mkdir(parents=True, exist_ok=True)
        temp = self.layout.tmp_dir / f"{sha256}.{os.getpid()}-{secrets.token_hex(4)}{ADOPT_SUFFIX}"
        try:
            actual, copied = _stream_hashing(src, temp, size + 1)
            if actual != sha256 or copied != size:
                return actual, copied
            temp.chmod(0o444)
            blob = self.path(sha256)
            with guard():
                if self.stat(sha256) is None:  # another run may have brought it meanwhile
                    blob.parent.mkdir(parents=True, exist_ok=True)
                    temp.replace(blob)
                    fsync_dir(blob.parent)
                    self.remember(sha256, on_disk=True)
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return actual, copied


def _copy_hashing(source: Path, dest: Path) -> str:
    """Copy with one read of the source, hashing as it goes; fsync before returning."""
    with source.open("rb", buffering=0) as src:
        return _stream_hashing(src, dest)[0]


def _stream_hashing(src: Readable, dest: Path, limit: int | None = None) -> tuple[str, int]:
    """Copy `src` (at most `limit` bytes) into the new file `dest`, hashing as it goes; fsync
    before returning the hex digest and the bytes copied."""
    digest = hashlib.sha256()
    copied = 0
    with aligned_buffer() as view, dest.open("xb", buffering=0) as dst:
        while limit is None or copied < limit:
            room = len(view) if limit is None else min(len(view), limit - copied)
            n = src.readinto(view[:room])
            if not n:
                break
            digest.update(view[:n])
            written = 0
            while written < n:
                written += dst.write(view[written:n]) or 0
            copied += n
        os.fsync(dst.fileno())
    return digest.hexdigest(), copied
