"""Download progress bars with rich, per file and total (bytes, rate, ETA); imported only where
a terminal can show them (`progress.choose_progress`): rich costs about 30 ms to import."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from modelsync import log
from modelsync.units import human_bytes

TOTAL = "total"
LABEL_WIDTH = 24
"""Columns for a file's name, so a bar line fits 80 columns: name 24, bar 14, bytes 19
(`999.9 MiB/999.9 MiB`), rate 11 (`999.9 MiB/s`), ETA 7, and the four gaps between them."""


class _BytesColumn(ProgressColumn):
    """`1.2 GiB/2.8 GiB`: the same binary units as every other line modelsync prints."""

    def render(self, task: Task) -> Text:
        total = human_bytes(int(task.total)) if task.total is not None else "?"
        return Text(f"{human_bytes(int(task.completed))}/{total}", justify="right")


class _RateColumn(ProgressColumn):
    """`45.2 MiB/s` (rich's own column says MB/s: decimal units next to our MiB)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{human_bytes(int(speed))}/s" if speed else "", justify="right")


def _short(label: str) -> str:
    """The end of a long name (the file, not the model folder, tells files apart)."""
    return label if len(label) <= LABEL_WIDTH else "…" + label[-(LABEL_WIDTH - 1) :]


class RichProgress:
    """A ProgressSink drawing one bar per active file and one for the whole plan; log lines
    printed meanwhile go above the bars, never onto one."""

    def __init__(
        self, console: Console, total_bytes: int, clock: Callable[[], float] | None = None
    ) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(bar_width=14),
            _BytesColumn(),
            _RateColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            get_time=clock,
        )
        self._total = self._progress.add_task(TOTAL, total=total_bytes)
        self._tasks: dict[str, TaskID] = {}
        self._routed = log.route(self._print)

    def _print(self, line: str) -> None:
        self._progress.console.print(Text(line), soft_wrap=True)

    def __enter__(self) -> RichProgress:
        self._progress.start()
        self._routed.__enter__()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._routed.__exit__(None, None, None)
        self._progress.stop()

    def start(self, label: str, total: int, done: int) -> None:
        """Add a bar for the file; bytes resumed from disk count as done."""
        self._tasks[label] = self._progress.add_task(_short(label), total=total, completed=done)
        self._progress.advance(self._total, done)

    def advance(self, label: str, n: int) -> None:
        """Move the file's bar and the total."""
        self._progress.advance(self._tasks[label], n)
        self._progress.advance(self._total, n)

    def restart(self, label: str) -> None:
        """Take the file's bytes back off both bars."""
        task = self._tasks[label]
        done = int(self._progress.tasks[task].completed)
        self._progress.reset(task)
        self._progress.advance(self._total, -done)

    def finish(self, label: str, *, ok: bool) -> None:
        """Remove the file's bar; the total keeps its bytes (the downloader logs the outcome)."""
        task = self._tasks.pop(label, None)
        if task is not None:
            self._progress.remove_task(task)


def console_for(stream: TextIO, environ: Mapping[str, str]) -> Console:
    """A rich console on `stream` that honours `NO_COLOR` and `TERM=dumb` (no colour, and no
    bars: a dumb terminal cannot redraw a line, so it is treated as a plain log)."""
    dumb = environ.get("TERM") == "dumb"
    return Console(
        file=stream,
        no_color=bool(environ.get("NO_COLOR")) or dumb,
        force_terminal=False if dumb else None,
    )
