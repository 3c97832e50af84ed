"""SHA-256 computed beside the download: the event loop receives and writes, one worker thread
hashes (hashlib releases the GIL on large updates), so verification costs little wall time on
2 cores (notes/baselines.md: row (d), 0.85× curl with the full check).

One stream hands its buffers over as they fill; parallel parts land out of order, so the thread
instead reads the partial's gap-free prefix back (from the page cache) each time it grows.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable

from modelsync.digest import CHUNK, aligned_buffer
from modelsync.fetch.worker import OrderedWorker


class StreamHasher:
    """A running SHA-256 fed in submission order by one worker thread."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._worker = OrderedWorker("modelsync-hash")

    def submit(self, data: memoryview | bytes, done: Callable[[], object] | None = None) -> None:
        """Queue bytes; `done` runs in the hashing thread once they are hashed, after which the
        caller may reuse the buffer behind `data`. Never blocks; safe from any thread."""
        self._worker.submit(lambda: self._sha.update(data), done)

    async def drain(self) -> None:
        """Wait until everything submitted is hashed; re-raises a failure of the thread."""
        await self._worker.drain()

    async def hash_prefix(self, fd: int, length: int) -> None:
        """Re-hash the first `length` bytes already on disk (a resumed partial is never trusted)."""
        await self.drain()
        await asyncio.to_thread(_hash_fd_span, self._sha, fd, 0, length)

    def submit_span(self, fd: int, start: int, end: int) -> None:
        """Queue bytes [start, end) of the file `fd`, read back by the hashing thread; they must
        follow what was hashed before. Never blocks."""
        self._worker.submit(lambda: _hash_fd_span(self._sha, fd, start, end))

    async def hexdigest(self) -> str:
        """The digest of everything submitted so far."""
        await self.drain()
        return self._sha.hexdigest()

    def reset(self) -> None:
        """Start over (after dropping the bytes received); call only when drained."""
        self._sha = hashlib.sha256()

    def close(self) -> None:
        """Stop the worker thread once it has finished what is queued."""
        self._worker.close()


def _hash_fd_span(sha: hashlib._Hash, fd: int, start: int, end: int) -> None:
    with aligned_buffer() as view:
        offset = start
        while offset < end:
            n = os.preadv(fd, [view[: min(CHUNK, end - offset)]], offset)
            if n == 0:
                raise OSError(f"partial file shorter than {end} bytes")
            sha.update(view[:n])
            offset += n
