"""A server that drips a byte now and then never trips a read timeout; the minimum-speed rule
ends such an attempt and retries it from the bytes already received."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from modelsync.errors import RemoteError
from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_blob
from modelsync.net.retry import RetryPolicy
from modelsync.net.session import create_session
from modelsync.store.layout import StoreLayout

# A window of 0.5 s instead of 30: a drip of 1 byte per 50 ms is far below 1 KiB/s.
DRIP_POLICY = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0, stall_window=0.5)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1."""
    return ("127.0.0.1", 0)


@pytest.fixture
def stop() -> Iterator[threading.Event]:
    """Set at the end of the test: every drip still running stops."""
    event = threading.Event()
    yield event
    event.set()


def drip_server(
    httpserver: HTTPServer, data: bytes, stop: threading.Event, *, drips: int
) -> list[str]:
    """The first `drips` answers send one byte every 50 ms, the later ones the rest at once;
    returns the Range headers received."""
    ranges: list[str] = []

    def handler(request: Request) -> Response:
        ranges.append(request.headers.get("Range", ""))
        match = re.fullmatch(r"bytes=(\d+)-", ranges[-1])
        start = int(match.group(1)) if match else 0
        body = data[start:]
        slow = len(ranges) <= drips

        def stream() -> Iterator[bytes]:
            for i in range(len(body)):
                if not slow:
                    yield body[i:]
                    return
                if stop.wait(0.05):
                    return
                yield body[i : i + 1]

        headers = {"Content-Length": str(len(body)), "ETag": '"v1"'}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return Response(stream(), status=206 if start else 200, headers=headers)

    httpserver.expect_request("/drip.bin").respond_with_handler(handler)
    return ranges


def fetch(layout: StoreLayout, item: FetchItem, policy: RetryPolicy = DRIP_POLICY) -> FetchResult:
    """Fetch with `policy`; the outer limit only keeps a hang (the bug) from lasting."""

    async def go() -> FetchResult:
        async with create_session() as session:
            fetcher = Fetcher(session=session, layout=layout, policy=policy, fsync=False)
            return await asyncio.wait_for(fetch_blob(fetcher, item), timeout=60)

    return asyncio.run(go())


# Under fetch.body.DIRECT_MIN (aiohttp's stream path) and over it (the direct socket path).
SIZES = [200_000, 5 << 20]


@pytest.mark.parametrize("size", SIZES)
def test_a_drip_that_never_speeds_up_fails_as_remote(
    httpserver: HTTPServer, tmp_path: Path, stop: threading.Event, size: int
) -> None:
    """Every attempt drips: each is ended as stalled, and after the policy's attempts the file
    fails with a RemoteError (exit 5) saying so; no blob is admitted."""
    data = os.urandom(size)
    ranges = drip_server(httpserver, data, stop, drips=99)
    layout = StoreLayout(tmp_path / "store")
    item = FetchItem(httpserver.url_for("/drip.bin"), size, hashlib.sha256(data).hexdigest(), "m/d")
    with pytest.raises(RemoteError) as caught:
        fetch(layout, item)
    assert "download failed after 2 attempts (stalled: " in caught.value.message
    assert len(ranges) == 2
    assert not layout.blob_path(item.sha256).exists()


@pytest.mark.parametrize("size", SIZES)
def test_a_stalled_attempt_is_retried_from_the_bytes_it_got(
    httpserver: HTTPServer, tmp_path: Path, stop: threading.Event, size: int
) -> None:
    """The first answer drips, the second is fast: the file arrives whole in two attempts,
    the second asking only for what the first did not deliver."""
    data = os.urandom(size)
    ranges = drip_server(httpserver, data, stop, drips=1)
    layout = StoreLayout(tmp_path / "store")
    item = FetchItem(httpserver.url_for("/drip.bin"), size, hashlib.sha256(data).hexdigest(), "m/d")
    # Spare attempts: on a loaded machine even the fast answer may lose a window.
    result = fetch(layout, item, dataclasses.replace(DRIP_POLICY, attempts=5))
    assert result.attempts >= 2
    assert result.received == size  # the dripped bytes were kept, not fetched again
    assert layout.blob_path(item.sha256).read_bytes() == data
    assert ranges[0] == ""
