"""Progress reporting seam: the downloader calls a sink; the CLI picks rich bars, JSON events or
nothing (design.md section 6)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


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
    """Structured `fetch_progress` events (for `--json`), at most one per interval and file."""

    def __init__(self, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._state: dict[str, tuple[int, int, float]] = {}  # label → (total, done, last emit)

    def start(self, label: str, total: int, done: int) -> None:
        """Emit the first event for a file."""
        self._state[label] = (total, done, self._clock())
        log.info("fetch.progress", file=label, bytes=done, total=total)

    def advance(self, label: str, n: int) -> None:
        """Count bytes; emit when the interval has passed."""
        total, done, last = self._state.get(label, (0, 0, 0.0))
        done += n
        now = self._clock()
        if now - last >= self._interval:
            log.info("fetch.progress", file=label, bytes=done, total=total)
            last = now
        self._state[label] = (total, done, last)

    def restart(self, label: str) -> None:
        """Back to zero bytes."""
        total, _done, last = self._state.get(label, (0, 0, 0.0))
        self._state[label] = (total, 0, last)

    def finish(self, label: str, *, ok: bool) -> None:
        """Forget the file; the downloader logs the outcome itself."""
        self._state.pop(label, None)
