"""Content digests: SHA-256 names every blob, read through page-aligned buffers."""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import re
from collections.abc import Iterator
from pathlib import Path

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_SHA1_HEX = re.compile(r"[0-9a-f]{40}")

# 1 MiB reads beat 4 MiB here, and a page-aligned buffer (mmap) avoids the slow copy into
# glibc's page+16 malloc blocks measured on some CPUs (notes/baselines.md, "Buffer alignment").
CHUNK = 1 << 20


def is_sha256(value: str) -> bool:
    """True for 64 lowercase hex digits."""
    return _SHA256_HEX.fullmatch(value) is not None


def is_commit_id(value: str) -> bool:
    """True for a full 40-hex git commit id."""
    return _SHA1_HEX.fullmatch(value) is not None


@contextlib.contextmanager
def aligned_buffer(size: int = CHUNK) -> Iterator[memoryview]:
    """A reusable page-aligned read buffer; slices of it must not outlive the block."""
    buffer = mmap.mmap(-1, size)
    view = memoryview(buffer)
    try:
        yield view
    finally:
        view.release()
        buffer.close()


def sha256_file(path: Path, *, chunk: int = CHUNK) -> str:
    """Hex SHA-256 of a file, read in page-aligned chunks (never the whole file at once)."""
    digest = hashlib.sha256()
    with aligned_buffer(chunk) as view, path.open("rb", buffering=0) as handle:
        while n := handle.readinto(view):
            digest.update(view[:n])
    return digest.hexdigest()
