"""One thread that runs submitted calls in order (the download's hasher).

A hand-off is one C-level `SimpleQueue.put`, with no future and no wake-up of the event loop
per call (executor hand-offs and their wake-ups were a tenth of a 2 GiB download's CPU time in
`perf`). After a call fails, later work is skipped but every `then` still runs (it gives buffers
back), and the next `drain()` raises the failure.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import TypeAlias

Call: TypeAlias = Callable[[], object]


class OrderedWorker:
    """A thread running `work` calls one after another, in submission order."""

    def __init__(self, name: str) -> None:
        self._queue: SimpleQueue[tuple[Call | None, Call | None] | None] = SimpleQueue()
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Call | None, then: Call | None = None) -> None:
        """Queue `work`; `then` runs in the thread right after it, even if it failed or was
        skipped. Never blocks."""
        if self._closed:
            raise RuntimeError(f"{self._thread.name} is closed")
        self._queue.put((work, then))

    async def drain(self) -> None:
        """Wait until everything submitted has run; re-raises the first failure."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not finished.done():
                finished.set_result(None)

        def from_thread() -> None:
            loop.call_soon_threadsafe(wake)

        self.submit(None, from_thread)
        await finished
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the thread once it has run what is queued."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            work, then = item
            for call in (work if self._error is None else None, then):
                try:
                    if call is not None:
                        call()
                except BaseException as exc:  # noqa: BLE001 - re-raised by the next drain()
                    self._error = self._error or exc
