"""Logging: structlog configured once per process, with secrets removed before rendering.

Events, not sentences: a stable event name plus key-value fields. Human output on a TTY, one JSON
object per line otherwise (or with `--json`, on stdout next to the final report).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

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
# Trailing punctuation belongs to the sentence, not the URL ("see http://x/y; then…").
_URL = re.compile(r"\bhttps?://[^\s\"'<>]+(?<![.,;:!?)\]])")


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


def level_for(verbosity: int) -> int:
    """-q → warnings only, default → info, -v → debug."""
    if verbosity < 0:
        return logging.WARNING
    if verbosity > 0:
        return logging.DEBUG
    return logging.INFO


def configure(*, json: bool, verbosity: int = 0, stream: TextIO | None = None) -> None:
    """Configure structlog for this process; called once by the CLI entry point.

    `json` forces JSON lines (the `--json` flag); otherwise JSON is chosen when the stream is
    not a TTY, so cron and CI logs stay machine-readable.
    """
    out = stream if stream is not None else (sys.stdout if json else sys.stderr)
    as_json = json or not out.isatty()
    renderer: structlog.typing.Processor
    if as_json:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=out.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level_for(verbosity)),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
