"""Progress reporting seam: the downloader calls a sink; the CLI picks rich bars on a TTY, events
otherwise (every second with `--json`, every ten seconds in a plain log), or nothing
(design.md section 6)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from modelsync.log import get_logger

log = get_logger(__name__)


class ProgressSink(Protocol):
    """Receives byte counts per file; implementations must be cheap (called per 1 MiB chunk)."""

    def start(self, label: str, total: int, done: int) -> None:
        """A file begins (or resumes with `done` bytes already on disk)."""

    def advance(self, label: str, n: int) -> None:
        """`n` more bytes of `label` arrived."""

    def restart(self, label: str) -> None:
        """The bytes of `label` were discarded; it starts again from zero."""

    def finish(self, label: str, *, ok: bool) -> None:
        """`label` is done (verified and stored) or failed."""


class NoProgress:
    """Silent: the summary is all the user sees."""

    def start(self, label: str, total: int, done: int) -> None:
        """Nothing to show."""

    def advance(self, label: str, n: int) -> None:
        """Nothing to show."""

    def restart(self, label: str) -> None:
        """Nothing to show."""

    def finish(self, label: str, *, ok: bool) -> None:
        """Nothing to show."""


class EventProgress:
    """`fetch_progress` events, at most one per `interval` and file: every second for `--json`;
    every ten seconds in a log without a TTY, so a CI log shows life on a long transfer and
    nothing for a short one (`first=False`: no event when a file starts)."""

    def __init__(
        self,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        first: bool = True,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._first = first
        # label → (total, done, last emit, done at the last emit)
        self._state: dict[str, tuple[int, int, float, int]] = {}

    def start(self, label: str, total: int, done: int) -> None:
        """Remember the file; emit its first event when asked to."""
        self._state[label] = (total, done, self._clock(), done)
        if self._first:
            log.info("fetch.progress", file=label, bytes=done, total=total)

    def advance(self, label: str, n: int) -> None:
        """Count bytes; emit when the interval has passed, with the rate since the last one."""
        total, done, last, done_then = self._state.get(label, (0, 0, self._clock(), 0))
        done += n
        now = self._clock()
        if now - last >= self._interval:
            rate = round((done - done_then) / (now - last))
            log.info("fetch.progress", file=label, bytes=done, total=total, rate=rate)
            last, done_then = now, done
        self._state[label] = (total, done, last, done_then)

    def restart(self, label: str) -> None:
        """Back to zero bytes."""
        total, _done, last, _then = self._state.get(label, (0, 0, self._clock(), 0))
        self._state[label] = (total, 0, last, 0)

    def finish(self, label: str, *, ok: bool) -> None:
        """Forget the file; the downloader logs the outcome itself."""
        self._state.pop(label, None)
