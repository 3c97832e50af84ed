"""Content digests: SHA-256 names every blob; git's blob SHA-1 is the Hub's id of small files."""

from __future__ import annotations

import hashlib
import mmap
import re
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


def sha256_file(path: Path, *, chunk: int = CHUNK) -> str:
    """Hex SHA-256 of a file, read in page-aligned chunks (never the whole file at once)."""
    digest = hashlib.sha256()
    buffer = mmap.mmap(-1, chunk)
    view = memoryview(buffer)
    try:
        with path.open("rb", buffering=0) as handle:
            while True:
                n = handle.readinto(view)
                if not n:
                    break
                digest.update(view[:n])
    finally:
        view.release()
        buffer.close()
    return digest.hexdigest()


def git_blob_sha1(data: bytes) -> str:
    """Git's object id of a blob: sha1(b"blob <len>\\0" + data); the Hub's ETag of small files."""
    header = b"blob %d\x00" % len(data)
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()
