"""Content digests: SHA-256 names every blob, read through page-aligned buffers."""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import threading
from collections.abc import Iterator
from pathlib import Path

from modelsync.rules import is_commit_id, is_sha256

__all__ = ["CHUNK", "aligned_buffer", "is_commit_id", "is_sha256", "sha256_file"]

# 1 MiB reads beat 4 MiB here, and a page-aligned buffer (mmap) avoids the slow copy into
# glibc's page+16 malloc blocks measured on some CPUs (notes/baselines.md, "Buffer alignment").
CHUNK = 1 << 20


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


def sha256_file(path: Path, *, chunk: int = CHUNK, stop: threading.Event | None = None) -> str:
    """Hex SHA-256 of a file, read in page-aligned chunks (never the whole file at once);
    once `stop` is set it gives up between chunks (the result is then meaningless)."""
    digest = hashlib.sha256()
    with aligned_buffer(chunk) as view, path.open("rb", buffering=0) as handle:
        while (n := handle.readinto(view)) and not (stop is not None and stop.is_set()):
            digest.update(view[:n])
    return digest.hexdigest()
