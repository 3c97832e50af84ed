"""How download progress and log lines are shown: bars on a terminal (80 columns, MiB and MiB/s,
log lines above them), a line per file every ten seconds in a plain log, events with --json;
NO_COLOR and TERM=dumb honoured."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from rich.console import Console

from modelsync import log
from modelsync.cli.bars import RichProgress, console_for
from modelsync.cli.progress import choose_progress
from modelsync.cli.render import event_line
from modelsync.fetch.progress import EventProgress, NoProgress

MIB = 1 << 20
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture
def pty_stream() -> Iterator[io.TextIOWrapper]:
    """The writing end of a real pseudo-terminal (isatty() is true)."""
    leader, follower = os.openpty()
    stream = os.fdopen(follower, "w", encoding="utf-8")
    try:
        yield stream
    finally:
        stream.close()
        os.close(leader)


def test_choice_follows_tty_json_and_dumb_terminals(
    pty_stream: io.TextIOWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--json wins; a terminal gets bars unless --no-progress; a pipe or a dumb terminal gets
    a line every ten seconds (nothing at start); FORCE_COLOR makes a pipe a terminal (rich's
    rule, force-color.org)."""
    xterm = {"TERM": "xterm"}
    for json, enabled, kind in ((True, True, EventProgress), (False, False, NoProgress)):
        sink = choose_progress(
            json=json, enabled=enabled, stream=pty_stream, environ=xterm, total_bytes=1
        )
        assert isinstance(sink, kind)
    bars = choose_progress(
        json=False, enabled=True, stream=pty_stream, environ=xterm, total_bytes=1
    )
    assert isinstance(bars, RichProgress)
    monkeypatch.setenv("FORCE_COLOR", "1")
    forced = os.environ
    assert isinstance(
        choose_progress(
            json=False, enabled=True, stream=io.StringIO(), environ=forced, total_bytes=1
        ),
        RichProgress,
    )
    for stream, environ in ((io.StringIO(), xterm), (pty_stream, {"TERM": "dumb"})):
        sink = choose_progress(
            json=False, enabled=True, stream=stream, environ=environ, total_bytes=1
        )
        assert isinstance(sink, EventProgress)


def test_a_plain_log_never_imports_rich(tmp_path: Path) -> None:
    """Where no bar can be drawn (a pipe, TERM=dumb, --json, -q) choosing the progress sink
    leaves rich unloaded: it costs a download's start-up about 30 ms."""
    script = (
        "import io, sys\n"
        "from modelsync.cli.progress import choose_progress\n"
        "for env in ({}, {'TERM': 'dumb'}):\n"
        "    for json, enabled in ((False, True), (True, True), (False, False)):\n"
        "        choose_progress(json=json, enabled=enabled, stream=io.StringIO(), environ=env,"
        " total_bytes=1)\n"
        "print('rich' in sys.modules)\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert ran.stdout.strip() == "False"


def test_bars_fit_80_columns_in_binary_units() -> None:
    """With a long file name, every bar line fits 80 columns and speaks MiB and MiB/s (never
    rich's decimal MB/s); resumed plus received bytes count in the total."""
    out = io.StringIO()
    now = [0.0]
    console = Console(file=out, force_terminal=True, width=80)
    with RichProgress(console, total_bytes=400 * MIB, clock=lambda: now[0]) as progress:
        label = "a-very-long-model-name/a-very-long-file-name-Q4_K_M-00001-of-00002.gguf"
        progress.start(label, 400 * MIB, 100 * MIB)
        for _ in range(10):
            now[0] += 1.0
            progress.advance(label, 10 * MIB)
        progress._progress.refresh()
        totals = progress._progress.tasks[0].completed
        progress.finish(label, ok=True)
    lines = [ANSI.sub("", x) for x in re.split(r"[\r\n]", out.getvalue()) if x.strip()]
    assert lines
    assert max(len(x) for x in lines) <= 80
    text = "\n".join(lines)
    assert "…K_M-00001-of-00002.gguf" in text
    assert "MiB/400.0 MiB" in text
    assert "10.0 MiB/s" in text
    assert "MB/s" not in text
    assert totals == 200 * MIB


def test_log_lines_go_above_the_bars_never_onto_one() -> None:
    """While bars are drawn, a log line is printed by the progress display (so it lands above
    the bars) and not written to the log stream underneath it; afterwards it goes back."""
    logs = io.StringIO()
    log.configure(json=False, stream=logs, render=event_line, colors=False)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with RichProgress(console, total_bytes=MIB) as progress:
        progress.start("m/f.gguf", MIB, 0)
        structlog.get_logger().warning(
            "fetch.retry", file="m/f.gguf", reason="HTTP 503", attempt=1, have=0, wait=0.5
        )
    structlog.get_logger().info("sync.removed_stale", file="m/old.gguf")
    assert "warning: retrying m/f.gguf in 0.5 s (attempt 1): HTTP 503" in ANSI.sub(
        "", out.getvalue()
    )
    assert logs.getvalue() == "removed m/old.gguf (no longer in the lock)\n"


def test_a_plain_log_gets_a_line_per_file_every_ten_seconds() -> None:
    """Without a TTY a short transfer prints nothing; a long one prints a line every ten
    seconds with bytes, percent and rate in MiB/s."""
    logs = io.StringIO()
    log.configure(json=False, stream=logs, render=event_line, colors=False)
    now = [0.0]
    sink = EventProgress(10.0, clock=lambda: now[0], first=False)
    sink.start("m/short.gguf", MIB, 0)
    now[0] = 3.0
    sink.advance("m/short.gguf", MIB)
    sink.finish("m/short.gguf", ok=True)
    assert logs.getvalue() == ""
    sink.start("m/long.gguf", 100 * MIB, 0)
    for second in range(1, 26):
        now[0] = 3.0 + second
        sink.advance("m/long.gguf", 2 * MIB)
    assert logs.getvalue().splitlines() == [
        "  m/long.gguf: 20.0 MiB of 100.0 MiB (20%), 2.0 MiB/s",
        "  m/long.gguf: 40.0 MiB of 100.0 MiB (40%), 2.0 MiB/s",
    ]


def test_colour_only_on_a_terminal_without_no_color_or_dumb(
    pty_stream: io.TextIOWrapper,
) -> None:
    """Warnings are coloured on a terminal; NO_COLOR or TERM=dumb turn it off, and a pipe
    never gets colour."""
    assert log.colors_wanted(pty_stream, {"TERM": "xterm"})
    assert not log.colors_wanted(pty_stream, {"TERM": "xterm", "NO_COLOR": "1"})
    assert not log.colors_wanted(pty_stream, {"TERM": "dumb"})
    assert not log.colors_wanted(io.StringIO(), {"TERM": "xterm"})
    assert console_for(pty_stream, {"NO_COLOR": "1"}).no_color
    assert console_for(pty_stream, {"TERM": "xterm"}).is_terminal
    assert not console_for(pty_stream, {"TERM": "dumb"}).is_terminal
    logs = io.StringIO()
    log.configure(json=False, stream=logs, render=event_line, colors=True)
    structlog.get_logger().warning("fetch.wait", file="m/f", why="another run is fetching it")
    assert (
        logs.getvalue() == "\x1b[33mwarning: waiting for m/f: another run is fetching it\x1b[0m\n"
    )
    assert log.recent_lines()[-1] == "warning: waiting for m/f: another run is fetching it"
