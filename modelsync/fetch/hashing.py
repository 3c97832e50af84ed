"""SHA-256 computed beside the download: the event loop receives and writes, one worker thread
hashes (hashlib releases the GIL on large updates), so verification costs almost no wall time
on 2 cores (notes/baselines.md: row (d), 0.85× curl with the full check).

The thread takes work from a `SimpleQueue` rather than an executor: a hand-off is one C-level
put, with no future and no wake-up of the event loop per chunk (executor hand-offs and their
wake-ups were a tenth of a 2 GiB download's CPU time in `perf`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import TypeAlias

from modelsync.digest import CHUNK, aligned_buffer

Done: TypeAlias = Callable[[], None]


class StreamHasher:
    """A running SHA-256 fed in submission order by one worker thread."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._queue: SimpleQueue[tuple[memoryview | bytes | None, Done | None] | None] = (
            SimpleQueue()
        )
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="modelsync-hash", daemon=True)
        self._thread.start()

    def submit(self, data: memoryview | bytes, done: Done | None = None) -> None:
        """Queue bytes; `done` runs in the hashing thread once they are hashed, after which the
        caller may reuse the buffer behind `data`. Never blocks."""
        self._queue.put((data, done))

    async def drain(self) -> None:
        """Wait until everything submitted is hashed; re-raises a failure of the thread."""
        loop = asyncio.get_running_loop()
        hashed: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not hashed.done():
                hashed.set_result(None)

        def from_thread() -> None:
            loop.call_soon_threadsafe(wake)

        self._queue.put((None, from_thread))
        await hashed
        if self._error is not None:
            raise self._error

    async def hash_prefix(self, fd: int, length: int) -> None:
        """Re-hash the first `length` bytes already on disk (a resumed partial is never trusted)."""
        await self.drain()
        await asyncio.to_thread(_hash_fd_prefix, self._sha, fd, length)

    async def hexdigest(self) -> str:
        """The digest of everything submitted so far."""
        await self.drain()
        return self._sha.hexdigest()

    def reset(self) -> None:
        """Start over (after dropping the bytes received); call only when drained."""
        self._sha = hashlib.sha256()

    def close(self) -> None:
        """Stop the worker thread once it has finished what is queued."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (work := self._queue.get()) is not None:
            data, done = work
            try:
                if data is not None and self._error is None:
                    self._sha.update(data)
            except BaseException as exc:  # noqa: BLE001 - reported by the next drain()
                self._error = exc
            finally:
                if done is not None:
                    done()


def _hash_fd_prefix(sha: hashlib._Hash, fd: int, length: int) -> None:
    with aligned_buffer() as view:
        offset = 0
        while offset < length:
            n = os.preadv(fd, [view[: min(CHUNK, length - offset)]], offset)
            if n == 0:
                raise OSError(f"partial file shorter than {length} bytes")
            sha.update(view[:n])
            offset += n
