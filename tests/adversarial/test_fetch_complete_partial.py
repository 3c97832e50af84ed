"""A partial that already holds every byte (a kill between the last byte and the rename) is
admitted without a request, and `resumed_from` says what a run really reused."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_blob
from modelsync.net.session import create_session
from modelsync.store.layout import StoreLayout

SIZE = 300_000


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1."""
    return ("127.0.0.1", 0)


def leave_partial(layout: StoreLayout, sha: str, data: bytes) -> Path:
    """What a run killed after writing `data` leaves in tmp/ (its lock died with it)."""
    layout.tmp_dir.mkdir(parents=True)
    path = layout.tmp_dir / layout.partial_name(sha, "999999-dead")
    path.write_bytes(data)
    return path


def fetch(layout: StoreLayout, item: FetchItem) -> FetchResult:
    async def go() -> FetchResult:
        async with create_session() as session:
            return await fetch_blob(Fetcher(session=session, layout=layout, fsync=False), item)

    return asyncio.run(go())


def strict_server(httpserver: HTTPServer, data: bytes, *, honour_range: bool) -> list[str]:
    """Serve `data` like a real origin: 416 for a range past the end; returns the Range
    headers of the requests it got."""
    ranges: list[str] = []

    def handler(request: Request) -> Response:
        ranges.append(request.headers.get("Range", ""))
        match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
        start = int(match.group(1)) if match and honour_range else 0
        if start >= len(data):
            return Response(b"", status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        headers = {"ETag": '"v1"'}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return Response(data[start:], status=206 if start else 200, headers=headers)

    httpserver.expect_request("/f.bin").respond_with_handler(handler)
    return ranges


def test_a_complete_partial_is_admitted_without_a_request(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A partial of the pinned size and digest becomes the blob; the server is never asked
    (it would answer 416 to `bytes=<size>-`), and the result says every byte was reused."""
    data = os.urandom(SIZE)
    sha = hashlib.sha256(data).hexdigest()
    layout = StoreLayout(tmp_path / "store")
    leave_partial(layout, sha, data)
    ranges = strict_server(httpserver, data, honour_range=True)
    result = fetch(layout, FetchItem(httpserver.url_for("/f.bin"), SIZE, sha, "m/f.bin"))
    assert ranges == []
    assert (result.received, result.resumed_from, result.attempts) == (0, SIZE, 0)
    assert layout.blob_path(sha).read_bytes() == data
    assert list(layout.tmp_dir.iterdir()) == []


def test_a_complete_partial_with_wrong_bytes_is_fetched_again(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A full-size partial whose digest is wrong is dropped and the file fetched from zero."""
    data = os.urandom(SIZE)
    sha = hashlib.sha256(data).hexdigest()
    layout = StoreLayout(tmp_path / "store")
    leave_partial(layout, sha, os.urandom(SIZE))
    ranges = strict_server(httpserver, data, honour_range=True)
    result = fetch(layout, FetchItem(httpserver.url_for("/f.bin"), SIZE, sha, "m/f.bin"))
    assert ranges == [""]
    assert (result.received, result.resumed_from) == (SIZE, 0)
    assert layout.blob_path(sha).read_bytes() == data


def test_resumed_from_is_zero_when_the_server_ignored_the_range(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A half partial offered with Range to a server that answers 200 with the whole file:
    the done result says nothing was reused and every byte came over the network."""
    data = os.urandom(SIZE)
    sha = hashlib.sha256(data).hexdigest()
    layout = StoreLayout(tmp_path / "store")
    leave_partial(layout, sha, data[: SIZE // 2])
    ranges = strict_server(httpserver, data, honour_range=False)
    result = fetch(layout, FetchItem(httpserver.url_for("/f.bin"), SIZE, sha, "m/f.bin"))
    assert ranges == [f"bytes={SIZE // 2}-"]
    assert (result.received, result.resumed_from) == (SIZE, 0)
    assert layout.blob_path(sha).read_bytes() == data
