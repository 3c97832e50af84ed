"""Secrets never reach log output (design.md section 10)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import structlog

from modelsync import log
from modelsync.cli.render import _EVENTS, _SUMMARIES, event_line

TOKEN = "hf_abcdefghijklmnopqrstuvwxyz123456"


def test_redact_text_removes_tokens_and_signed_queries() -> None:
    """Bearer values, Hub tokens, URL credentials and query strings are removed."""
    text = (
        f"GET https://user:pw@cdn.example/blob?X-Amz-Signature=abc&exp=1 "
        f"Authorization: Bearer {TOKEN} also {TOKEN}"
    )
    redacted = log.redact_text(text)
    assert TOKEN not in redacted
    assert "pw@" not in redacted
    assert "X-Amz-Signature" not in redacted
    assert "https://cdn.example/blob?[redacted]" in redacted
    assert "Bearer [redacted]" in redacted


def test_redact_text_leaves_prose_and_sentence_punctuation() -> None:
    """Words after "token" stay unless they look like a credential; a URL ends before ';'."""
    text = "HTTP 401 from http://127.0.0.1:8080/f.bin; set a token with access"
    assert log.redact_text(text) == text
    assert log.redact_text("bad port http://h:99999/x") == "bad port [redacted]"


def test_redact_url_keeps_host_port_and_path() -> None:
    """A URL keeps what identifies the resource and loses what authorises it."""
    assert log.redact_url("http://127.0.0.2:9000/cdn/ab?sig=x") == (
        "http://127.0.0.2:9000/cdn/ab?[redacted]"
    )
    assert log.redact_url("https://hub.example/org/repo") == "https://hub.example/org/repo"


def test_configured_logger_redacts_secret_fields() -> None:
    """An event carrying a token, headers and a signed URL is rendered without any secret."""
    stream = io.StringIO()
    log.configure(json=True, stream=stream)
    structlog.get_logger().info(
        "fetch_start",
        token=TOKEN,
        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "*/*"},
        url="https://cdn.example/x?sig=secret",
        note=f"retrying with {TOKEN}",
    )
    line = stream.getvalue()
    assert TOKEN not in line
    assert "secret" not in line
    event = json.loads(line)
    assert event["event"] == "fetch_start"
    assert event["token"] == log.REDACTED
    assert event["headers"] == {"Authorization": log.REDACTED, "Accept": "*/*"}
    assert event["level"] == "info"


def test_quiet_hides_info_and_verbose_shows_debug() -> None:
    """-q keeps warnings only; -v adds debug events."""
    quiet = io.StringIO()
    log.configure(json=True, verbosity=-1, stream=quiet)
    structlog.get_logger().info("hidden")
    structlog.get_logger().warning("shown")
    assert [json.loads(x)["event"] for x in quiet.getvalue().splitlines()] == ["shown"]
    loud = io.StringIO()
    log.configure(json=True, verbosity=1, stream=loud)
    structlog.get_logger().debug("detail")
    assert json.loads(loud.getvalue())["event"] == "detail"


def test_human_lines_and_the_recent_ring_hold_no_secret() -> None:
    """Human rendering (shown or only kept for a failing -q run's tail) redacts tokens and
    signed URLs like JSON does; the quiet console shows errors only."""
    stream = io.StringIO()
    log.configure(json=False, verbosity=-1, stream=stream, render=event_line, colors=False)
    logger = structlog.get_logger()
    logger.info("fetch_body", file="m/f", url="https://cdn.example/x?X-Amz-Signature=sig")
    logger.warning(
        "fetch.retry", file="m/f", reason=f"401 with Bearer {TOKEN}", attempt=1, have=0, wait=1
    )
    logger.error("boom", token=TOKEN)
    assert stream.getvalue() == f"error: boom token={log.REDACTED}\n"
    recent = "\n".join(log.recent_lines())
    assert TOKEN not in recent
    assert "X-Amz-Signature" not in recent
    assert "https://cdn.example/x?[redacted]" in recent
    assert "warning: retrying m/f in 1 s (attempt 1): 401 with Bearer [redacted]" in recent


def test_every_event_sentence_names_an_event_the_code_logs() -> None:
    """A sentence for an event nobody logs (renamed or removed) is caught here; an event whose
    fields changed falls back to `event key=value` instead of failing the run."""
    package = Path(log.__file__).parent
    source = "\n".join(p.read_text() for p in package.rglob("*.py") if p.name != "render.py")
    for name in (*_EVENTS, *_SUMMARIES):
        assert f'"{name}"' in source, name
    assert event_line({"event": "fetch.done", "file": "m/f"}) == "fetch.done file=m/f"


# The same events through `log.get_logger`, printing what people see, the ring, and whether
# structlog was loaded. With `import structlog` first, they go through structlog's processors;
# without, straight to the console (how the CLI runs until an event needs structlog).
EVENTS_SCRIPT = """
import io, sys
from modelsync import log
from modelsync.cli.render import event_line
for verbosity in (-1, 0, 1):
    stream = io.StringIO()
    log.configure(json=False, verbosity=verbosity, stream=stream, render=event_line, colors=False)
    logger = log.get_logger("events")
    logger.debug("sync.detail", file="m/f")
    logger.info("sync.done", models=2, files=3, fetch=0, place=0, remove=0, seconds=0.1)
    logger.info("fetch_body", url="https://cdn.example/x?X-Amz-Signature=sig", token="TOKEN")
    bound = logger.bind(model="m", file="m/f")
    bound.warning("fetch.retry", reason="401 with Bearer TOKEN", attempt=1, have=0, wait=1)
    bound.error("boom", path="/p")
    print(repr(stream.getvalue()))
    print(repr(log.recent_lines()))
print("structlog" in sys.modules)
"""


def test_events_read_the_same_with_and_without_structlog_loaded(tmp_path: Path) -> None:
    """A human-mode event prints, and enters the ring of a quiet run, exactly as structlog's
    processors render it, when structlog is never loaded (the CLI's start-up cost)."""
    script = EVENTS_SCRIPT.replace("TOKEN", TOKEN)
    outputs = []
    for prefix in ("", "import structlog\n"):
        ran = subprocess.run(
            [sys.executable, "-c", prefix + script],
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
            timeout=60,
        )
        outputs.append(ran.stdout.splitlines())
    direct, through_structlog = outputs
    assert direct[-1] == "False"
    assert through_structlog[-1] == "True"
    assert direct[:-1] == through_structlog[:-1]
    assert TOKEN not in "".join(direct)
    assert any("retrying m/f in 1 s" in line for line in direct)
