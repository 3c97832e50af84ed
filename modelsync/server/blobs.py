"""The server's content-addressed blob store under `<root>/.hub/blobs`, and hashing while copying.

Blobs are named by SHA-256, written to a temp file, fsynced, made read-only and renamed into
place (the folder fsynced too). Nothing else lives in the blob folders, so no `.gz`/`.br`
sibling can ever be served.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modelsync.atomic import fsync_dir
from modelsync.digest import CHUNK
from modelsync.server import gitobj


@dataclass(frozen=True, slots=True)
class Hashed:
    """The digests of some content, and its first bytes (for the LFS rule)."""

    sha256: str
    git_sha1: str
    size: int
    head: bytes


class SizeMismatchError(ValueError):
    """The content was longer or shorter than announced."""


class Hasher:
    """SHA-256 and git blob SHA-1 of content of a known size, fed in chunks."""

    def __init__(self, size: int) -> None:
        self.expected = size
        self.size = 0
        self._sha256 = hashlib.sha256()
        self._sha1 = hashlib.sha1(gitobj.git_blob_header(size), usedforsecurity=False)
        self._head = bytearray()

    def update(self, chunk: bytes) -> None:
        """Add the next chunk; `SizeMismatchError` as soon as it goes past the announced size."""
        self.size += len(chunk)
        if self.size > self.expected:
            raise SizeMismatchError(f"more than the announced {self.expected} bytes")
        self._sha256.update(chunk)
        self._sha1.update(chunk)
        if len(self._head) < gitobj.BINARY_SNIFF_BYTES:
            self._head += chunk[: gitobj.BINARY_SNIFF_BYTES - len(self._head)]

    def result(self) -> Hashed:
        """The digests; `SizeMismatchError` if fewer bytes came than announced."""
        if self.size != self.expected:
            raise SizeMismatchError(f"{self.size} bytes instead of the announced {self.expected}")
        return Hashed(
            self._sha256.hexdigest(), self._sha1.hexdigest(), self.size, bytes(self._head)
        )


def hash_bytes(data: bytes) -> Hashed:
    """The digests of in-memory content."""
    hasher = Hasher(len(data))
    hasher.update(data)
    return hasher.result()


class BlobStore:
    """Blobs by SHA-256 under `<state>/blobs/ab/<sha256>`, temp files under `<state>/tmp`."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "blobs"
        self.tmp_dir = state_dir / "tmp"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        """Where the blob of this digest lives (whether or not it exists)."""
        return self.dir / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        """The stored blob's size, `None` if it is not stored."""
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def head(self, sha256: str) -> bytes:
        """The first bytes of a stored blob (for the LFS rule)."""
        with self.path(sha256).open("rb") as f:
            return f.read(gitobj.BINARY_SNIFF_BYTES)

    @contextmanager
    def temp_file(self) -> Iterator[tuple[BinaryIO, Path]]:
        """A new temp file on the blob store's filesystem, removed unless adopted."""
        path = self.tmp_dir / f"incoming-{secrets.token_hex(8)}"
        try:
            with path.open("xb") as f:
                yield f, path
        finally:
            path.unlink(missing_ok=True)

    def adopt(self, temp: BinaryIO, temp_path: Path, sha256: str) -> Path:
        """Make a fully written temp file the blob `sha256` (a no-op if it is stored already)."""
        target = self.path(sha256)
        if target.is_file():
            return target
        temp.flush()
        os.fsync(temp.fileno())
        target.parent.mkdir(exist_ok=True)
        temp_path.chmod(0o444)
        temp_path.replace(target)
        fsync_dir(target.parent)  # the rename too survives a crash (atomic.py's rule)
        return target

    def put_bytes(self, data: bytes) -> Hashed:
        """Store in-memory content."""
        hashed = hash_bytes(data)
        if not self.has(hashed.sha256):
            with self.temp_file() as (f, path):
                f.write(data)
                self.adopt(f, path, hashed.sha256)
        return hashed

    def put_file(self, src: BinaryIO) -> Hashed:
        """Copy an open file into the store, hashing the very bytes copied (one read of it)."""
        with self.temp_file() as (f, path):
            hasher = Hasher(os.fstat(src.fileno()).st_size)
            while chunk := src.read(CHUNK):
                hasher.update(chunk)
                f.write(chunk)
            hashed = hasher.result()
            self.adopt(f, path, hashed.sha256)
        return hashed
