"""SHA-256 computed beside the download: the event loop receives and writes, one worker thread
hashes (hashlib releases the GIL on large updates), so verification costs almost no wall time
on 2 cores (notes/baselines.md: row (d), 0.85× curl with the full check)."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from modelsync.digest import CHUNK, aligned_buffer

# Chunks in flight to the hashing thread; bounds memory (DEPTH × 1 MiB) and keeps order.
DEPTH = 4


class StreamHasher:
    """Feeds chunks to one hashing thread in order; `hexdigest()` waits for all of them."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="modelsync-hash")
        self._pending: collections.deque[asyncio.Future[None]] = collections.deque()

    async def update(self, data: bytes) -> None:
        """Queue a chunk; waits only when DEPTH chunks are already queued."""
        loop = asyncio.get_running_loop()
        self._pending.append(loop.run_in_executor(self._pool, self._sha.update, data))
        if len(self._pending) >= DEPTH:
            await self._pending.popleft()

    async def hash_prefix(self, fd: int, length: int) -> None:
        """Re-hash the first `length` bytes already on disk (a resumed partial is never trusted)."""
        await self.drain()
        await asyncio.get_running_loop().run_in_executor(
            self._pool, _hash_fd_prefix, self._sha, fd, length
        )

    async def drain(self) -> None:
        """Wait for every queued chunk."""
        while self._pending:
            await self._pending.popleft()

    async def hexdigest(self) -> str:
        """The digest of everything fed so far."""
        await self.drain()
        return self._sha.hexdigest()

    def reset(self) -> None:
        """Start over (after dropping the bytes received); call only when drained."""
        self._sha = hashlib.sha256()

    def close(self) -> None:
        """Stop the worker thread."""
        self._pool.shutdown(wait=True, cancel_futures=True)


def _hash_fd_prefix(sha: hashlib._Hash, fd: int, length: int) -> None:
    with aligned_buffer() as view:
        offset = 0
        while offset < length:
            n = os.preadv(fd, [view[: min(CHUNK, length - offset)]], offset)
            if n == 0:
                raise OSError(f"partial file shorter than {length} bytes")
            sha.update(view[:n])
            offset += n
