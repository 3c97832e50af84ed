"""Receiving one body over real HTTP on 127.0.0.1: the direct (BufferedProtocol) path for plain
Content-Length bodies, aiohttp's stream for the rest, and what survives a failure."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from modelsync.digest import CHUNK
from modelsync.fetch.body import DIRECT_MIN, SLOTS, BodyCut, BodySink, BodyTooLong, receive
from modelsync.fetch.hashing import StreamHasher
from modelsync.net.session import Timeouts, create_session
from modelsync.store.layout import StoreLayout
from modelsync.store.partial import claim_partial

SHA = "0" * 64  # the partial's name only; the digest under test comes from the hasher


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1 (not `localhost`, which may resolve to ::1 first)."""
    return ("127.0.0.1", 0)


class Outcome:
    """What one `receive` left behind."""

    def __init__(self, way: str | None, error: BaseException | None, kept: bytes, digest: str):
        self.way, self.error, self.kept, self.digest = way, error, kept, digest


def fetch_body(
    tmp_path: Path,
    url: str,
    *,
    limit: int,
    read_timeout: float = 30.0,
    stall_hashing: float = 0.0,
    trust: ssl.SSLContext | None = None,
) -> Outcome:
    """GET `url` and `receive` its body into a fresh partial, as `fetch_blob` does."""

    async def go() -> Outcome:
        layout = StoreLayout(tmp_path / "store")
        partial = claim_partial(layout, SHA)
        hasher = StreamHasher()
        gate = threading.Event()
        if stall_hashing:
            # Hold the hashing thread, so every slot fills and receiving must pause and resume.

            def hold() -> None:
                gate.wait()

            hasher.submit(b"", hold)
            asyncio.get_running_loop().call_later(stall_hashing, gate.set)
        sink = BodySink(partial.write, hasher, limit=limit, on_bytes=lambda _n: None)
        way: str | None = None
        error: BaseException | None = None
        try:
            async with (
                create_session(timeouts=Timeouts(read=read_timeout)) as session,
                session.get(url, ssl=trust if trust is not None else True) as response,
            ):
                way = await receive(response, sink, read_timeout=read_timeout)
        except (BodyCut, BodyTooLong, TimeoutError) as exc:
            error = exc
        finally:
            gate.set()
            await sink.settle()
            digest = await hasher.hexdigest()
            sink.close()
            hasher.close()
            kept = partial.path.read_bytes()
            partial.close()
        return Outcome(way, error, kept, digest)

    return asyncio.run(go())


def sha(data: bytes) -> str:
    """Hex SHA-256."""
    return hashlib.sha256(data).hexdigest()


def test_content_length_body_is_read_directly_into_the_slots(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    data = os.urandom(5 * CHUNK + 123)
    httpserver.expect_request("/f").respond_with_data(data)
    outcome = fetch_body(tmp_path, httpserver.url_for("/f"), limit=len(data))
    assert (outcome.way, outcome.error) == ("direct", None)
    assert outcome.kept == data
    assert outcome.digest == sha(data)


def test_tls_body_is_read_directly_too(tmp_path: Path) -> None:
    """The Hub and its CDN speak HTTPS: asyncio's TLS transport feeds the slots as well."""
    authority = trustme.CA()
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_side)
    client_side = ssl.create_default_context()
    authority.configure_trust(client_side)
    data = os.urandom(3 * SLOTS * CHUNK + 4099)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=server_side)
    server.expect_request("/f").respond_with_data(data)
    server.start()
    try:
        url = server.url_for("/f")
        assert url.startswith("https://")
        outcome = fetch_body(tmp_path, url, limit=len(data), trust=client_side)
    finally:
        server.clear()
        server.stop()
    assert (outcome.way, outcome.error) == ("direct", None)
    assert outcome.kept == data
    assert outcome.digest == sha(data)


def test_receiving_pauses_while_the_hashing_thread_holds_every_slot(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    data = os.urandom(4 * SLOTS * CHUNK + 7)
    httpserver.expect_request("/f").respond_with_data(data)
    started = time.monotonic()
    outcome = fetch_body(tmp_path, httpserver.url_for("/f"), limit=len(data), stall_hashing=0.5)
    assert time.monotonic() - started >= 0.5  # the body could not finish before the gate opened
    assert (outcome.way, outcome.error) == ("direct", None)
    assert outcome.kept == data
    assert outcome.digest == sha(data)


def test_small_body_keeps_aiohttps_stream_and_connection(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    data = os.urandom(DIRECT_MIN // 2)
    httpserver.expect_request("/f").respond_with_data(data)
    outcome = fetch_body(tmp_path, httpserver.url_for("/f"), limit=len(data))
    assert (outcome.way, outcome.error) == ("stream", None)
    assert outcome.kept == data
    assert outcome.digest == sha(data)


def test_chunked_body_goes_through_the_stream(httpserver: HTTPServer, tmp_path: Path) -> None:
    data = os.urandom(3 * CHUNK + 99)

    def handler(_request: Request) -> Response:
        def pieces() -> Iterator[bytes]:
            for start in range(0, len(data), 300_000):
                yield data[start : start + 300_000]

        return Response(pieces())  # no Content-Length: HTTP/1.1 chunked

    httpserver.expect_request("/f").respond_with_handler(handler)
    outcome = fetch_body(tmp_path, httpserver.url_for("/f"), limit=len(data))
    assert (outcome.way, outcome.error) == ("stream", None)
    assert outcome.kept == data
    assert outcome.digest == sha(data)


def test_chunked_body_past_the_limit_is_refused(httpserver: HTTPServer, tmp_path: Path) -> None:
    data = os.urandom(2 * CHUNK)
    httpserver.expect_request("/f").respond_with_handler(lambda _r: Response(iter([data])))
    outcome = fetch_body(tmp_path, httpserver.url_for("/f"), limit=CHUNK)
    assert isinstance(outcome.error, BodyTooLong)
    assert len(outcome.kept) <= CHUNK  # never a byte past the pin (the caller discards them)
    assert data.startswith(outcome.kept)


def test_announced_length_past_the_limit_reads_nothing(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/f").respond_with_data(os.urandom(CHUNK + 1))
    outcome = fetch_body(tmp_path, httpserver.url_for("/f"), limit=CHUNK)
    assert isinstance(outcome.error, BodyTooLong)
    assert outcome.kept == b""


def _cut_after(data: bytes, keep: int, *, stall: float = 0.0) -> Response:
    """Announce all of `data`, send `keep` bytes, then stall or drop the connection."""

    def stream() -> Iterator[bytes]:
        yield data[:keep]
        if stall:
            time.sleep(stall)
            return
        raise ConnectionResetError("injected reset mid-body")

    return Response(stream(), headers={"Content-Length": str(len(data))})


def test_bytes_before_a_dropped_connection_are_kept(httpserver: HTTPServer, tmp_path: Path) -> None:
    data = os.urandom(2 * DIRECT_MIN)
    keep = 2 * CHUNK + 5000  # ends inside a slot: the partly filled slot must be kept too
    httpserver.expect_request("/f").respond_with_handler(lambda _r: _cut_after(data, keep))
    outcome = fetch_body(tmp_path, httpserver.url_for("/f"), limit=len(data))
    assert isinstance(outcome.error, BodyCut)
    assert outcome.kept == data[:keep]
    assert outcome.digest == sha(data[:keep])


def test_silence_past_the_read_timeout_fails_and_keeps_the_bytes(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    data = os.urandom(2 * DIRECT_MIN)
    keep = CHUNK + 17
    httpserver.expect_request("/f").respond_with_handler(
        lambda _r: _cut_after(data, keep, stall=2.0)
    )
    outcome = fetch_body(tmp_path, httpserver.url_for("/f"), limit=len(data), read_timeout=0.5)
    assert isinstance(outcome.error, TimeoutError)
    assert outcome.kept == data[:keep]
    assert outcome.digest == sha(data[:keep])
