"""The transfer engine against exact faults injected by pytest-httpserver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from modelsync.errors import AuthError, IntegrityError, RemoteError
from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_each
from modelsync.net.retry import RetryPolicy
from modelsync.net.session import Credentials, Timeouts, create_session
from modelsync.store.layout import StoreLayout

TOKEN = "hf_fetchtesttokenabcdefghijklmnop"
# Over fetch.body.DIRECT_MIN, so these faults meet the direct socket path (test_fetch_body covers
# the stream path too); not a multiple of the chunk size.
SIZE = 9 * (1 << 20) + 4321

Fault = Callable[[Request, bytes, int], Response] | None


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1 (not `localhost`, which may resolve to ::1 first)."""
    return ("127.0.0.1", 0)


@dataclass
class FileServer:
    """Serves one file with Range support; `faults[i]` replaces the i-th answer when set."""

    data: bytes
    faults: list[Fault] = field(default_factory=list)
    etag: str = '"v1"'
    requests: list[dict[str, str]] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)  # body bytes per request

    def __call__(self, request: Request) -> Response:
        index = len(self.requests)
        self.requests.append(dict(request.headers))
        start = _range_start(request.headers.get("Range"))
        fault = self.faults[index] if index < len(self.faults) else None
        if fault is not None:
            return fault(request, self.data, start)
        return self.answer(start)

    def answer(self, start: int, *, data: bytes | None = None, etag: str | None = None) -> Response:
        body = (self.data if data is None else data)[start:]
        self.sent.append(len(body))
        headers = {"ETag": etag or self.etag, "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
            return Response(body, status=206, headers=headers)
        return Response(body, status=200, headers=headers)


def _range_start(header: str | None) -> int:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match.group(1)) if match else 0


def _truncated(keep: int) -> Fault:
    """Send the Content-Length of the whole rest but only `keep` bytes, then close."""

    def fault(_request: Request, data: bytes, start: int) -> Response:
        body = data[start:]

        def stream() -> Iterator[bytes]:
            yield body[:keep]
            raise ConnectionResetError("injected reset mid-body")

        headers = {"Content-Length": str(len(body)), "ETag": '"v1"'}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return Response(stream(), status=206 if start else 200, headers=headers)

    return fault


def _status(code: int, headers: dict[str, str] | None = None) -> Fault:
    def fault(_request: Request, _data: bytes, _start: int) -> Response:
        return Response(b"error", status=code, headers=headers or {})

    return fault


@pytest.fixture
def payload() -> bytes:
    """Random bytes of a few MiB."""
    return os.urandom(SIZE)


@pytest.fixture
def layout(tmp_path: Path) -> StoreLayout:
    """An empty store."""
    return StoreLayout(tmp_path / "store")


@dataclass
class Sleeps:
    """Records the backoff waits instead of sleeping."""

    waits: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def run_fetch(
    layout: StoreLayout,
    items: list[FetchItem],
    *,
    sleeps: Sleeps | None = None,
    credentials: Credentials | None = None,
    timeouts: Timeouts | None = None,
    attempts: int = 5,
) -> list[FetchResult]:
    """Fetch with a fresh session, as one CLI run would; the first failure is raised."""

    async def go() -> list[FetchResult]:
        async with create_session(timeouts=timeouts) as session:
            fetcher = Fetcher(
                session=session,
                layout=layout,
                credentials=credentials or Credentials(),
                policy=RetryPolicy(attempts=attempts),
                sleep=sleeps or Sleeps(),
                rand=lambda: 0.0,
                connections=1,  # these faults meet one stream; parallel pieces: test_fetch_ranges
            )
            outcomes = await fetch_each(fetcher, items, jobs=4)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return [o for o in outcomes if isinstance(o, FetchResult)]

    return asyncio.run(go())


def serve(httpserver: HTTPServer, server: FileServer, path: str = "/f.bin") -> FetchItem:
    """Register `server` at `path` and return the matching pinned item."""
    httpserver.expect_request(path).respond_with_handler(server)
    sha = hashlib.sha256(server.data).hexdigest()
    return FetchItem(httpserver.url_for(path), len(server.data), sha, f"m/{path.lstrip('/')}")


def assert_stored(layout: StoreLayout, data: bytes) -> None:
    """The blob holds exactly `data`, is read-only, and no partial is left behind."""
    blob = layout.blob_path(hashlib.sha256(data).hexdigest())
    assert blob.read_bytes() == data
    assert not blob.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert list(layout.tmp_dir.iterdir()) == []


def test_download_stores_a_verified_read_only_blob(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A plain 200 becomes a read-only blob named by its SHA-256, asked with identity encoding."""
    server = FileServer(payload)
    [result] = run_fetch(layout, [serve(httpserver, server)])
    assert_stored(layout, payload)
    assert result.received == SIZE
    assert result.attempts == 1
    assert server.requests[0]["Accept-Encoding"] == "identity"


def test_present_blob_costs_no_request(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A second fetch of a stored blob makes no HTTP request."""
    server = FileServer(payload)
    item = serve(httpserver, server)
    run_fetch(layout, [item])
    [again] = run_fetch(layout, [item])
    assert len(server.requests) == 1
    assert again.received == 0


def test_503_twice_then_200_is_retried_with_backoff(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """Two 503s are retried with growing waits; the third answer is stored."""
    server = FileServer(payload, faults=[_status(503), _status(503)])
    sleeps = Sleeps()
    [result] = run_fetch(layout, [serve(httpserver, server)], sleeps=sleeps)
    assert_stored(layout, payload)
    assert result.attempts == 3
    assert sleeps.waits == [0.5, 1.0]


def test_429_honours_retry_after(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A 429 with `Retry-After: 3` waits 3 s (longer than the backoff) before retrying."""
    server = FileServer(payload, faults=[_status(429, {"Retry-After": "3"})])
    sleeps = Sleeps()
    run_fetch(layout, [serve(httpserver, server)], sleeps=sleeps)
    assert_stored(layout, payload)
    assert sleeps.waits == [3.0]


@pytest.mark.parametrize("keep", [0, 1000, (1 << 20) + 7])
def test_reset_mid_body_resumes_from_received_bytes(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes, keep: int
) -> None:
    """A body cut short is continued with `Range: bytes=N-` where N is what arrived."""
    server = FileServer(payload, faults=[_truncated(keep)])
    [result] = run_fetch(layout, [serve(httpserver, server)])
    assert_stored(layout, payload)
    assert result.attempts == 2
    if keep:
        assert server.requests[1]["Range"] == f"bytes={keep}-"
        assert server.requests[1]["If-Range"] == '"v1"'
        assert server.sent == [SIZE - keep]
    else:
        assert "Range" not in server.requests[1]


def test_resets_exhausting_the_attempts_exit_5_without_secrets(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """Persistent failure ends as RemoteError naming the file, never the token or query string."""
    server = FileServer(payload, faults=[_status(502)] * 3)
    item = serve(httpserver, server)
    signed = FetchItem(item.url + "?sig=secret123", item.size, item.sha256, item.label)
    with pytest.raises(RemoteError) as caught:
        run_fetch(
            layout,
            [signed],
            attempts=3,
            credentials=Credentials({f"http://127.0.0.1:{httpserver.port}": TOKEN}),
        )
    message = caught.value.one_line()
    assert caught.value.exit_code == 5
    assert "m/f.bin: download failed after 3 attempts (HTTP 502)" in message
    assert "secret123" not in message
    assert TOKEN not in message
    assert not layout.blob_path(item.sha256).exists()


def test_slow_server_past_read_timeout_is_retried(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A server that stalls longer than the read timeout is abandoned and resumed."""

    def stall(_request: Request, data: bytes, _start: int) -> Response:
        def stream() -> Iterator[bytes]:
            yield data[:5000]
            time.sleep(1.5)
            yield data[5000:]

        return Response(stream(), headers={"Content-Length": str(len(data)), "ETag": '"v1"'})

    server = FileServer(payload, faults=[stall])
    [result] = run_fetch(layout, [serve(httpserver, server)], timeouts=Timeouts(read=0.4))
    assert_stored(layout, payload)
    # The test server answers one request at a time, so retries can queue behind the stall.
    assert result.attempts >= 2
    assert {r["Range"] for r in server.requests[1:]} == {"bytes=5000-"}


def test_one_flipped_byte_is_refetched_once(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A corrupt body is discarded and fetched again from zero; the good copy is stored."""
    corrupt = bytearray(payload)
    corrupt[SIZE // 2] ^= 0xFF
    server = FileServer(payload)
    server.faults = [lambda _r, _d, start: server.answer(start, data=bytes(corrupt))]
    [result] = run_fetch(layout, [serve(httpserver, server)])
    assert_stored(layout, payload)
    assert result.attempts == 2
    assert "Range" not in server.requests[1]


def test_persistent_corruption_exits_4_naming_both_digests(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """Bytes that mismatch twice fail with IntegrityError; no blob and no partial remain."""
    corrupt = bytearray(payload)
    corrupt[0] ^= 0x01
    bad_sha = hashlib.sha256(corrupt).hexdigest()
    server = FileServer(bytes(corrupt))
    item = serve(httpserver, server)
    pinned = FetchItem(item.url, item.size, hashlib.sha256(payload).hexdigest(), item.label)
    with pytest.raises(IntegrityError) as caught:
        run_fetch(layout, [pinned])
    message = caught.value.one_line()
    assert caught.value.exit_code == 4
    assert f"expected {pinned.sha256}, got {bad_sha}" in message
    assert len(server.requests) == 2
    assert not layout.blob_path(pinned.sha256).exists()
    assert list(layout.tmp_dir.iterdir()) == []


def test_redirect_to_another_port_never_carries_the_token(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """The registry gets the token; the CDN on another port gets the redirect but no token."""
    cdn = HTTPServer(host="127.0.0.1", port=0)
    cdn.start()
    try:
        server = FileServer(payload)
        cdn.expect_request("/blob").respond_with_handler(server)
        target = cdn.url_for("/blob") + "?sig=abc"
        seen: list[dict[str, str]] = []

        def redirect(request: Request) -> Response:
            seen.append(dict(request.headers))
            return Response(status=302, headers={"Location": target})

        httpserver.expect_request("/resolve").respond_with_handler(redirect)
        item = FetchItem(
            httpserver.url_for("/resolve"), SIZE, hashlib.sha256(payload).hexdigest(), "m/f"
        )
        creds = Credentials({f"http://127.0.0.1:{httpserver.port}": TOKEN})
        run_fetch(layout, [item], credentials=creds)
    finally:
        cdn.stop()
    assert_stored(layout, payload)
    assert seen[0]["Authorization"] == f"Bearer {TOKEN}"
    assert "Authorization" not in server.requests[0]


def test_range_answered_with_200_restarts_from_zero(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A server ignoring Range sends the whole file; the stale prefix is dropped, not doubled."""
    server = FileServer(payload, faults=[_truncated(200_000), lambda _r, _d, _s: server.answer(0)])
    [result] = run_fetch(layout, [serve(httpserver, server)])
    assert_stored(layout, payload)
    assert server.requests[1]["Range"] == "bytes=200000-"
    assert result.attempts == 2


def test_changed_etag_between_attempts_restarts_safely(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A 206 whose ETag differs from the partial's is discarded and the file refetched whole."""
    server = FileServer(payload)
    server.faults = [
        _truncated(300_000),
        lambda _r, _d, start: server.answer(start, etag='"v2"'),
    ]
    [result] = run_fetch(layout, [serve(httpserver, server)])
    assert_stored(layout, payload)
    assert result.attempts == 3
    assert "Range" not in server.requests[2]


def test_unauthorized_fails_at_once_with_exit_5(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """401 is not retried: it says which token to set."""
    server = FileServer(payload, faults=[_status(401)])
    with pytest.raises(AuthError) as caught:
        run_fetch(layout, [serve(httpserver, server)])
    assert caught.value.exit_code == 5
    assert "m/f.bin: HTTP 401" in caught.value.one_line()
    assert "HF_TOKEN" in caught.value.one_line()
    assert len(server.requests) == 1


def test_orphaned_partial_is_resumed_after_hashing_its_prefix(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A partial left by a dead process is reused: only the missing bytes are sent."""
    sha = hashlib.sha256(payload).hexdigest()
    layout.tmp_dir.mkdir(parents=True)
    (layout.tmp_dir / layout.partial_name(sha, "999-dead")).write_bytes(payload[:1_500_000])
    server = FileServer(payload)
    [result] = run_fetch(layout, [serve(httpserver, server)])
    assert_stored(layout, payload)
    assert result.resumed_from == 1_500_000
    assert server.sent == [SIZE - 1_500_000]


def test_corrupt_orphaned_partial_is_caught_by_the_digest(
    httpserver: HTTPServer, layout: StoreLayout, payload: bytes
) -> None:
    """A partial prefix is never trusted blindly: bad bytes in it lead to one clean refetch."""
    sha = hashlib.sha256(payload).hexdigest()
    layout.tmp_dir.mkdir(parents=True)
    bad = bytearray(payload[:1_000_000])
    bad[10] ^= 0xFF
    (layout.tmp_dir / layout.partial_name(sha, "999-dead")).write_bytes(bytes(bad))
    server = FileServer(payload)
    run_fetch(layout, [serve(httpserver, server)])
    assert_stored(layout, payload)
    assert server.sent == [SIZE - 1_000_000, SIZE]


def test_many_files_at_once(httpserver: HTTPServer, layout: StoreLayout) -> None:
    """Several files fetched concurrently all land as blobs."""
    datas = [os.urandom(200_000 + i) for i in range(6)]
    items = [serve(httpserver, FileServer(d), f"/f{i}.bin") for i, d in enumerate(datas)]
    results = run_fetch(layout, items)
    assert sorted(r.item.label for r in results) == sorted(i.label for i in items)
    for data in datas:
        assert layout.blob_path(hashlib.sha256(data).hexdigest()).read_bytes() == data
