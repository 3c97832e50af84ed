"""A blob remote's signed GET URLs expire (after PRESIGN_SECONDS, or sooner with temporary
credentials such as an instance role's): a long sync must not meet an expired URL for a file
it starts late. The remote here is a hostile server on 127.0.0.1 that serves the blobs but
treats every URL signed before its first answer was sent as expired (403, as S3 says it)."""

from __future__ import annotations

import calendar
import hashlib
import re
import threading
import time
from pathlib import Path

from modelsync.log import redact_text, redact_url
from tests.adversarial.test_remote_s3 import CANARY, SIGNED, all_output
from tests.cli.test_push import events
from tests.fixtures.cli import CliRunner
from tests.fixtures.projects import TINY_WEIGHTS
from tests.fixtures.raw import raw_http_server
from tests.fixtures.s3 import aws_env

BLOBS = {hashlib.sha256(data).hexdigest(): data for data in (TINY_WEIGHTS, b"{}")}
_DATE = re.compile(rb"X-Amz-Date=([0-9]{8}T[0-9]{6})Z")
_KEY = re.compile(rb"/sha256/([0-9a-f]{64})")
HOLD_S = 1.2  # the first answer is held past a second boundary: X-Amz-Date has whole seconds


def test_a_file_started_late_gets_a_freshly_signed_url(
    tiny_project: dict[str, str], run_cli: CliRunner, tmp_path: Path
) -> None:
    """With one download at a time, the second file's URL is signed when its download starts,
    not with the first file's: both come from the remote, no warning says it refused, and no
    signed query reaches any output."""
    lock = threading.Lock()
    answered: list[float] = []
    dates: list[bytes] = []

    def reply(head: bytes) -> bytes:
        date, key = _DATE.search(head), _KEY.search(head)
        if date is None or key is None or key.group(1).decode() not in BLOBS:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        signed = calendar.timegm(time.strptime(date.group(1).decode(), "%Y%m%dT%H%M%S"))
        with lock:
            dates.append(date.group(1))
            first = not answered
            expired = not first and signed < int(answered[0])
        if expired:
            body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            return b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        if first:
            time.sleep(HOLD_S)
        data = BLOBS[key.group(1).decode()]
        with lock:
            answered.append(time.time())
        return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (
            len(data),
            data,
        )

    with raw_http_server(reply) as endpoint:
        remote = (
            f'[remotes.team]\ntype = "s3"\nbucket = "fleet-models"\nendpoint-url = "{endpoint}"\n'
        )
        Path("models.toml").write_text(Path("models.toml").read_text() + remote)
        env = {**tiny_project, **aws_env(tmp_path, "AKIAFLEET", CANARY)}
        result = run_cli("-v", "sync", "--jobs", "1", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    assert len(dates) == 2
    assert not events(result, "remote.unavailable")
    assert {e["file"]: e.get("remote") for e in events(result, "fetch.done")} == {
        "tiny/weights.bin": "team",
        "tiny/config.json": "team",
    }
    assert CANARY not in all_output(result)
    assert not SIGNED.search(all_output(result))


def test_a_url_that_expires_mid_file_is_signed_again_and_the_bytes_kept(
    tiny_project: dict[str, str], run_cli: CliRunner, tmp_path: Path
) -> None:
    """The remote sends half of the weights and drops the connection; the retry of that URL is
    refused as expired (403). The download is signed again once and continues from the bytes
    it has (a Range request): both files come from the remote, no warning says it refused."""
    lock = threading.Lock()
    seen: list[tuple[bytes, bytes]] = []  # (X-Amz-Date, Range) of each request for the weights
    refused_at: list[float] = []
    weights = hashlib.sha256(TINY_WEIGHTS).hexdigest().encode()

    def reply(head: bytes) -> bytes:
        date, key = _DATE.search(head), _KEY.search(head)
        if date is None or key is None or key.group(1).decode() not in BLOBS:
            return b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        data = BLOBS[key.group(1).decode()]
        if key.group(1) != weights:
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
        ranged = re.search(rb"(?i)\r\nrange: bytes=([0-9]+)-", head)
        with lock:
            seen.append((date.group(1), ranged.group(1) if ranged else b""))
            calls = len(seen)
        if calls == 1:  # half the body, then the connection drops
            return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data[:2500])
        signed = calendar.timegm(time.strptime(date.group(1).decode(), "%Y%m%dT%H%M%S"))
        if not refused_at or signed < int(refused_at[0]):  # the first URL has expired now
            time.sleep(HOLD_S)  # past a second boundary: a URL signed after this one differs
            with lock:
                refused_at.append(time.time())
            body = b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            return b"HTTP/1.1 403 Forbidden\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        start = int(ranged.group(1)) if ranged else 0
        return b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\n" % (
            start,
            len(data) - 1,
            len(data),
        ) + b"Content-Length: %d\r\n\r\n%s" % (len(data) - start, data[start:])

    with raw_http_server(reply) as endpoint:
        remote = (
            f'[remotes.team]\ntype = "s3"\nbucket = "fleet-models"\nendpoint-url = "{endpoint}"\n'
        )
        Path("models.toml").write_text(Path("models.toml").read_text() + remote)
        env = {**tiny_project, **aws_env(tmp_path, "AKIAFLEET", CANARY)}
        result = run_cli("-v", "sync", "--jobs", "1", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    assert not events(result, "remote.unavailable")
    assert {e["file"]: e.get("remote") for e in events(result, "fetch.done")} == {
        "tiny/weights.bin": "team",
        "tiny/config.json": "team",
    }
    assert [r for _, r in seen] == [b"", b"2500", b"2500"]
    assert seen[2][0] > seen[1][0]  # signed again after the refusal
    assert Path("models/tiny/weights.bin").read_bytes() == TINY_WEIGHTS
    assert not SIGNED.search(all_output(result))


def test_a_signed_url_redacted_twice_reads_the_same() -> None:
    """Messages carry URLs already redacted (`?[redacted]`) and pass through the log
    processor's redaction again: the second pass leaves them as they are (the warning for a
    skipped remote read `…?[redacted]])`)."""
    url = redact_url(f"http://127.0.0.1:9/b/k?X-Amz-Signature={CANARY}&X-Amz-Date=1")
    line = f"remote team skipped (from {url}); fetching from the registry"
    assert redact_text(line) == line
    assert redact_text(f"see [{url}]") == f"see [{url}]"
    assert CANARY not in redact_text(f"from http://h/k?X-Amz-Signature={CANARY}]")
    assert CANARY not in redact_text(f"from http://h/k?[redacted]&X-Amz-Signature={CANARY}")
