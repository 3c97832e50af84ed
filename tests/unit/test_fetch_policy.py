"""Pure parts of the transfer engine: retry policy, Retry-After, store paths, preflight."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from modelsync.errors import UsageError
from modelsync.fetch.preflight import check_free_space, free_bytes
from modelsync.fetch.progress import EventProgress
from modelsync.net.retry import RetryPolicy, retry_after_seconds
from modelsync.net.session import Credentials
from modelsync.store.layout import StoreLayout
from modelsync.units import human_bytes


def test_backoff_doubles_up_to_the_cap_with_jitter() -> None:
    """Waits grow 0.5, 1, 2, … capped at max_delay; jitter adds at most its fraction."""
    policy = RetryPolicy(base_delay=0.5, max_delay=4.0, jitter=0.25)
    assert [policy.delay(n, retry_after=None, rand=0.0) for n in range(1, 6)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
    ]
    assert policy.delay(1, retry_after=None, rand=0.999) == pytest.approx(0.5 * 1.24975)


def test_retry_after_wins_when_longer() -> None:
    """A server's Retry-After beyond the backoff is honoured; a shorter one is not a speed-up."""
    policy = RetryPolicy(base_delay=0.5)
    assert policy.delay(1, retry_after=7.0, rand=0.0) == 7.0
    assert policy.delay(3, retry_after=0.1, rand=0.0) == 2.0


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "Wed, 25 Nov 2026 10:00:05 GMT"}, 5.0),
        ({"RateLimit": '"api";r=0;t=55', "Retry-After": "3"}, 55.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "\u00b2"}, None),  # "²".isdigit() is true
        ({"RateLimit": '"api";r=0;t=\u0663'}, None),  # an Arabic-Indic three matches \d
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], seconds: float | None) -> None:
    """Integer seconds, HTTP dates and the Hub's RateLimit header are all understood; digits
    other than ASCII ones are not a number of seconds."""
    now = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(headers, now=now) == seconds


def test_stall_is_under_the_minimum_speed_over_one_window() -> None:
    """1 KiB/s over 30 s by default: 30 KiB in a window is enough, one byte less is a stall."""
    policy = RetryPolicy()
    assert not policy.stalled(30 * 1024)
    assert policy.stalled(30 * 1024 - 1)
    assert RetryPolicy(stall_window=1.0, min_speed=10).stalled(9)


def test_blob_path_layout() -> None:
    """Blobs live at blobs/sha256/<2 hex>/<64 hex>; anything else is refused."""
    layout = StoreLayout(Path("/s"))
    sha = "0f" + "a" * 62
    assert layout.blob_path(sha) == Path("/s/blobs/sha256/0f") / sha
    with pytest.raises(ValueError, match="not a sha256"):
        layout.blob_path("../../etc/passwd")


def test_credentials_only_for_their_origin() -> None:
    """A token is sent to its own scheme, host and port only."""
    creds = Credentials({"https://hub.example:443": "t0k"})
    assert creds.headers_for("https://hub.example/org/repo") == {"Authorization": "Bearer t0k"}
    assert creds.headers_for("https://cdn.example/blob") == {}
    assert creds.headers_for("http://hub.example/org/repo") == {}
    assert creds.headers_for("https://hub.example:8443/x") == {}
    assert "t0k" not in repr(creds)


def test_preflight_refuses_with_numbers() -> None:
    """A plan larger than the free space is a usage error naming both sizes."""
    check_free_space(needed=10, free=10, where=Path("/store"))
    with pytest.raises(UsageError) as caught:
        check_free_space(needed=3 << 30, free=1 << 30, where=Path("/store"))
    line = caught.value.one_line()
    assert "/store: the plan fetches 3.0 GiB (3221225472 bytes)" in line
    assert "only 1.0 GiB (1073741824 bytes) are free" in line
    assert caught.value.exit_code == 2


def test_free_bytes_of_a_missing_dir_uses_its_parent(tmp_path: Path) -> None:
    """A store that does not exist yet is measured on the disk it will be created on."""
    assert free_bytes(tmp_path / "not" / "yet") > 0
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(12) == "12 B"


def test_event_progress_is_rate_limited() -> None:
    """JSON progress emits at start and then at most once per interval per file."""
    now = [0.0]
    progress = EventProgress(interval=1.0, clock=lambda: now[0])
    with capture_logs() as logs:
        progress.start("m/f", 100, 0)
        progress.advance("m/f", 10)
        now[0] = 1.5
        progress.advance("m/f", 10)
        progress.finish("m/f", ok=True)
    assert [(e["event"], e["bytes"]) for e in logs] == [
        ("fetch.progress", 0),
        ("fetch.progress", 20),
    ]
