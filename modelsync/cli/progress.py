"""Download progress: rich bars on a terminal (`cli/bars.py`), a line per file every ten seconds
in a plain log, events with `--json`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

from modelsync.fetch.progress import EventProgress, NoProgress, ProgressSink

LOG_INTERVAL = 10.0
"""Seconds between progress lines of one file in a plain (non-TTY) log."""


def choose_progress(
    *, json: bool, enabled: bool, stream: TextIO, environ: Mapping[str, str], total_bytes: int
) -> ProgressSink:
    """Events every second with --json; bars on a terminal that can draw them; in a plain log
    (CI, cron, `TERM=dumb`) a line per file every ten seconds; nothing with --no-progress/-q.
    A sink that draws bars is a context manager: enter it for the downloads."""
    if json:
        return EventProgress()
    if not enabled:
        return NoProgress()
    if _may_draw(stream, environ):
        from modelsync.cli.bars import RichProgress, console_for  # noqa: PLC0415 - see bars.py

        console = console_for(stream, environ)
        if console.is_terminal:
            return RichProgress(console, total_bytes)
    return EventProgress(LOG_INTERVAL, first=False)


def _may_draw(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """False where rich would not call `stream` a terminal either (not a TTY and nothing
    forcing one, or `TERM=dumb`), so a plain log never imports rich; rich decides the rest."""
    if environ.get("TERM") == "dumb":
        return False
    if environ.get("FORCE_COLOR") or environ.get("TTY_COMPATIBLE") == "1":
        return True
    try:
        return stream.isatty()
    except ValueError:  # a closed stream
        return False
