"""How download progress is shown: bars on a terminal, events with --json, else nothing."""

from __future__ import annotations

import io

from rich.console import Console

from modelsync.cli.progress import RichProgress, choose_progress
from modelsync.fetch.progress import EventProgress, NoProgress


def test_choice_follows_tty_and_json() -> None:
    """--json wins; a terminal gets bars unless --no-progress; pipes get nothing."""
    tty = Console(file=io.StringIO(), force_terminal=True)
    pipe = Console(file=io.StringIO(), force_terminal=False)
    assert isinstance(
        choose_progress(json=True, enabled=True, console=tty, total_bytes=1), EventProgress
    )
    assert isinstance(
        choose_progress(json=False, enabled=True, console=tty, total_bytes=1), RichProgress
    )
    assert isinstance(
        choose_progress(json=False, enabled=False, console=tty, total_bytes=1), NoProgress
    )
    assert isinstance(
        choose_progress(json=False, enabled=True, console=pipe, total_bytes=1), NoProgress
    )


def test_bars_show_file_and_total_bytes() -> None:
    """The rendered bars name the file and count resumed plus received bytes in the total."""
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with RichProgress(console, total_bytes=4 << 20) as progress:
        progress.start("gemma/model.gguf", 4 << 20, 1 << 20)
        progress.advance("gemma/model.gguf", 1 << 20)
        progress.restart("gemma/model.gguf")
        progress.advance("gemma/model.gguf", 3 << 20)
        progress._progress.refresh()
        rendered = out.getvalue()
        totals = progress._progress.tasks[0].completed
        progress.finish("gemma/model.gguf", ok=True)
    assert "gemma/model.gguf" in rendered
    assert "total" in rendered
    assert totals == 3 << 20
