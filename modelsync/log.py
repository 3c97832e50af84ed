"""Logging: structlog configured once per process, with secrets removed before rendering.

Events, not sentences: a stable event name plus key-value fields. People get one short line per
event on stderr, TTY or not (a CI log is read by people too); `--json` gives one JSON object per
line on stdout next to the final report. Events from info up, shown or not, also enter a ring of
recent lines, so a quiet (`-q`) run that fails can still say what led up to the error.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, TextIO
from urllib.parse import urlsplit, urlunsplit


@contextlib.contextmanager
def _hidden(module: str, unless: str) -> Iterator[None]:
    """Make `import module` fail inside the block (None in sys.modules), unless `module` or
    `unless` is loaded already (then the block imports nothing new, and hides nothing)."""
    if module in sys.modules or unless in sys.modules:
        yield
        return
    sys.modules[module] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules[module]


if TYPE_CHECKING:
    import structlog

REDACTED = "[redacted]"

# Keys whose values are secrets whatever they hold.
_SECRET_KEYS = frozenset(
    {"authorization", "token", "password", "secret", "api_key", "apikey", "cookie", "hf_token"}
)
# A credential-looking value (12+ token characters) after the scheme word, so prose such as
# "a token with access" is left alone.
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{12,}")
_HF_TOKEN = re.compile(r"\bhf_[A-Za-z0-9]{8,}")
# Trailing punctuation belongs to the sentence, not the URL ("see http://x/y; then…"); a URL
# redacted already keeps its whole `?[redacted]` (else a second pass doubles the bracket).
_URL = re.compile(
    r"\bhttps?://[^\s\"'<>?]*\?\[redacted\](?![^\s\"'<>.,;:!?)\]])"
    r"|\bhttps?://[^\s\"'<>]+(?<![.,;:!?)\]])"
)


def redact_url(url: str) -> str:
    """Drop credentials and the query string (signed CDN URLs carry their signature there)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return REDACTED
    host = parts.hostname or ""
    if port is not None:
        host = f"{host}:{port}"
    query = REDACTED if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


def redact_text(text: str) -> str:
    """Remove bearer tokens, Hub tokens, URL credentials and signed query strings from text."""
    text = _URL.sub(lambda m: redact_url(m.group(0)), text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _HF_TOKEN.sub(REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if key.lower().replace("-", "_") in _SECRET_KEYS:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(key, v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: no token, Authorization value or signed URL reaches any output."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(key, event_dict[key])
    return event_dict


# The stdlib's level numbers, without importing `logging` (nothing of it is used here).
DEBUG, INFO, WARNING, ERROR, CRITICAL = 10, 20, 30, 40, 50
_PREFIXES = {WARNING: "warning", ERROR: "error", CRITICAL: "critical"}

Renderer = Callable[[Mapping[str, Any]], str | None]
"""One event → one human line (None: the event is not shown to people, e.g. a summary event the
command prints itself)."""
Writer = Callable[[str], None]

TAIL_LINES = 20
"""How many recent events a failing `-q` run prints before its error line."""


def level_for(verbosity: int) -> int:
    """-q → warnings only, default → info, -v → debug (the level of `--json` events)."""
    if verbosity < 0:
        return WARNING
    if verbosity > 0:
        return DEBUG
    return INFO


def console_level_for(verbosity: int) -> int:
    """What people see: -q → errors only (cron mails nothing on success), else as `level_for`."""
    return ERROR if verbosity < 0 else level_for(verbosity)


def colors_wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a TTY, never with `NO_COLOR` set (no-color.org) or `TERM=dumb`."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    return stream.isatty()


def plain_line(event: Mapping[str, Any]) -> str:
    """`event key=value …`: the fallback for events without a sentence of their own."""
    fields = " ".join(
        f"{k}={v}" for k, v in event.items() if k not in {"event", "level", "timestamp"}
    )
    return f"{event['event']} {fields}".rstrip()


_LEVELS = {
    "debug": DEBUG,
    "info": INFO,
    "warning": WARNING,
    "warn": WARNING,
    "error": ERROR,
    "exception": ERROR,
    "critical": CRITICAL,
}


class _Console:
    """The human side: a ring of recent lines, and the writer shown lines go through (stderr,
    or the live progress display while one is drawn, so a line never lands on a bar)."""

    def __init__(self, stream: TextIO, level: int, render: Renderer, colors: bool) -> None:
        self.stream = stream
        self.level = level
        self.render = render
        self.colors = colors
        self.recent: deque[str] = deque(maxlen=TAIL_LINES)
        self.writer: Writer = self._write

    def _write(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def show(self, method: str, event: Mapping[str, Any]) -> None:
        """Render the event into the ring, and onto the console from its level up."""
        level = _LEVELS.get(method, INFO)
        rendered = self.render(event)
        line = plain_line(event) if rendered is None else rendered
        if level >= WARNING:
            line = f"{_PREFIXES[level]}: {line}"
        self.recent.append(line)
        if rendered is not None and level >= self.level:
            self.writer(f"\x1b[33m{line}\x1b[0m" if self.colors and level >= WARNING else line)

    def __call__(
        self, _logger: Any, method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        self.show(method, event)
        import structlog  # noqa: PLC0415 - loaded by configure

        raise structlog.DropEvent


_console: _Console | None = None


def recent_lines() -> list[str]:
    """The last events of this run as human lines (for the error report of a quiet run)."""
    return list(_console.recent) if _console is not None else []


@contextlib.contextmanager
def route(writer: Writer) -> Iterator[None]:
    """Send shown lines through `writer` for the block (a progress display prints them above
    its bars); JSON output is left alone."""
    if _console is None:
        yield
        return
    saved = _console.writer
    _console.writer = writer
    try:
        yield
    finally:
        _console.writer = saved


def configure(
    *,
    json: bool,
    verbosity: int = 0,
    stream: TextIO | None = None,
    render: Renderer | None = None,
    colors: bool | None = None,
) -> None:
    """Configure logging for this process; called once by the CLI entry point (structlog is
    imported and configured now with `json` or when loaded already, else at the first event
    that needs it: see `_direct`).

    `json`: JSON lines on `stream` (default stdout) at the level of `verbosity`. Otherwise human
    lines from `render` (default `plain_line`) on `stream` (default stderr); events from info up
    (debug too with -v) enter the ring of recent lines, those at the console level are shown.
    """
    global _console, _pending  # noqa: PLW0603 - structlog's configuration is process-wide too
    if json:
        out = stream if stream is not None else sys.stdout
        _console = None
        level = level_for(verbosity)
    else:
        out = stream if stream is not None else sys.stderr
        _console = _Console(
            out,
            console_level_for(verbosity),
            render or plain_line,
            colors_wanted(out) if colors is None else colors,
        )
        # Info and up reach the ring even with -q (the tail of a failing quiet run); debug
        # events only with -v, so a busy server does not format one per request for nothing.
        level = level_for(max(verbosity, 0))
    _pending = _Pending(json, out, level)
    if json or "structlog" in sys.modules:
        _structlog()


class _Pending(NamedTuple):
    """What `configure` asked for, until structlog is configured with it."""

    json: bool
    out: TextIO
    level: int


_pending: _Pending | None = None


def _structlog() -> ModuleType:
    """structlog, configured as `configure` asked (the first time it is needed)."""
    global _pending  # noqa: PLW0603
    # Imported here, not at the top: `--help` needs no structlog (it pulls in asyncio). And
    # without rich: structlog.dev and structlog.tracebacks import it when installed (about 60 ms,
    # more than a no-op sync's own work) for renderers we never use (format_exc_info renders
    # plain tracebacks); rich is imported by itself where a progress bar is drawn.
    with _hidden("rich", unless="structlog"):
        import structlog  # noqa: PLC0415
    if _pending is None:
        return structlog
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
    ]
    if _pending.json:
        processors += [
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ]
    else:
        assert _console is not None
        processors += [redact_secrets, structlog.processors.format_exc_info, _console]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_pending.level),
        logger_factory=structlog.PrintLoggerFactory(_pending.out),
        cache_logger_on_first_use=False,
    )
    _pending = None
    return structlog


def _direct() -> _Pending | None:
    """The human configuration while structlog is not loaded: events then go straight to the
    console (the same processors, without structlog's machinery), so a run that logs a
    summary and no traceback never imports structlog, nor asyncio, which it imports (about
    30 ms: a fifth of a no-op `sync`)."""
    if _pending is None or _pending.json or "structlog" in sys.modules:
        return None
    return _pending


class Logger:
    """A module's logger (`log = get_logger(__name__)`): structlog's bound logger, but imported
    and configured at the first event that needs it (see `_direct`)."""

    __slots__ = ("_bound", "_context", "_name")

    def __init__(self, name: str, context: Mapping[str, Any] | None = None) -> None:
        self._name = name
        self._context = dict(context or {})
        self._bound: Any = None

    def bind(self, **fields: Any) -> Logger:
        """A logger that adds `fields` to every event."""
        return Logger(self._name, {**self._context, **fields})

    def debug(self, event: str, **fields: Any) -> None:
        self._log("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        self._log("exception", event, fields)

    def _log(self, method: str, event: str, fields: dict[str, Any]) -> None:
        direct = _direct()
        if direct is not None and method != "exception" and "exc_info" not in fields:
            if _LEVELS[method] >= direct.level:
                assert _console is not None
                # As structlog builds it: context, fields, event; then add_log_level.
                found: dict[str, Any] = {**self._context, **fields, "event": event}
                found["level"] = method
                _console.show(method, redact_secrets(None, method, found))
            return
        if self._bound is None:
            self._bound = _structlog().get_logger(self._name, **self._context)
        getattr(self._bound, method)(event, **fields)


def get_logger(name: str) -> Logger:
    """The logger of module `name`."""
    return Logger(name)
