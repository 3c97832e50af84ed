"""Rich progress bars for downloads (per file and total: bytes, rate, ETA), only on a TTY."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from modelsync.fetch.progress import EventProgress, NoProgress, ProgressSink

TOTAL = "total"


class RichProgress:
    """A ProgressSink drawing one bar per active file and one for the whole plan."""

    def __init__(self, console: Console, total_bytes: int) -> None:
        self._progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._total = self._progress.add_task(TOTAL, total=total_bytes)
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def start(self, label: str, total: int, done: int) -> None:
        """Add a bar for the file; bytes resumed from disk count as done."""
        self._tasks[label] = self._progress.add_task(label, total=total, completed=done)
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
        """Remove the file's bar; the total keeps its bytes."""
        task = self._tasks.pop(label, None)
        if task is not None:
            self._progress.remove_task(task)
        if not ok:
            self._progress.console.log(f"[red]failed[/red] {label}")


def choose_progress(
    *, json: bool, enabled: bool, console: Console, total_bytes: int
) -> RichProgress | ProgressSink:
    """Bars on a TTY, periodic events with --json, silence otherwise (the summary still prints)."""
    if json:
        return EventProgress()
    if enabled and console.is_terminal:
        return RichProgress(console, total_bytes)
    return NoProgress()
