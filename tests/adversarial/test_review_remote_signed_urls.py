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
