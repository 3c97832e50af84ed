"""Malformed answers are per-file failures: retried where a retry can help, exit 5 at the end,
and every file that did verify is still placed (design.md section 10)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from modelsync.errors import ExitCode, RemoteError
from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_each
from modelsync.net.retry import RetryPolicy
from modelsync.net.session import create_session
from modelsync.ops.lock import LockRequest, lock_project
from modelsync.ops.sync import SyncRequest, sync_project
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.hub import HubRepoFactory
from tests.fixtures.raw import raw_http_server

GOOD = os.urandom(100_000)
FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)

RAW = {
    "/bad-status": b"HTTP/1.1 2OO OK\r\nContent-Length: 3\r\n\r\nabc",
    "/long-header": b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 9000 + b"\r\nContent-Length: 3\r\n\r\nabc",
    "/many-headers": b"HTTP/1.1 200 OK\r\n" + b"X-A: a\r\n" * 200_000 + b"\r\nabc",
    # "²".isdigit() is true, float("²") raises
    "/superscript-retry-after": b"HTTP/1.1 503 Busy\r\nRetry-After: \xc2\xb2\r\n"
    b"Content-Length: 0\r\n\r\n",
}


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1."""
    return ("127.0.0.1", 0)


@pytest.fixture
def raw_server() -> Iterator[str]:
    """A socket server on 127.0.0.1 answering each path of RAW with its bytes, then closing;
    yields its base URL."""

    def reply(head: bytes) -> bytes:
        path = head.split(b" ", 2)[1].decode() if head.count(b" ") >= 2 else ""
        return RAW.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    with raw_http_server(reply) as url:
        yield url


def hostile(httpserver: HTTPServer, raw: str) -> None:
    """Routes of `httpserver`: /good serves GOOD, the others misbehave."""
    httpserver.expect_request("/good").respond_with_data(GOOD)
    httpserver.expect_request("/loop").respond_with_response(
        Response(status=302, headers={"Location": "/loop"})
    )
    for scheme, where in (("file", "file:///etc/passwd"), ("ftp", "ftp://127.0.0.1/x")):
        httpserver.expect_request(f"/to-{scheme}").respond_with_response(
            Response(status=302, headers={"Location": where})
        )
    for path in RAW:
        httpserver.expect_request(path).respond_with_response(
            Response(status=302, headers={"Location": raw + path})
        )


CASES = ["/bad-status", "/long-header", "/many-headers", "/loop", "/to-file", "/to-ftp"]
CASES += ["/superscript-retry-after"]


@pytest.mark.parametrize("path", CASES)
def test_a_malformed_answer_fails_only_its_own_file(
    httpserver: HTTPServer, raw_server: str, tmp_path: Path, path: str
) -> None:
    """Fetched beside a good file, each hostile answer ends as a RemoteError (exit 5) naming
    its file and URL, never as an exception that stops the run; the good file is a blob."""
    hostile(httpserver, raw_server)
    layout = StoreLayout(tmp_path / "store")
    good = FetchItem(
        httpserver.url_for("/good"), len(GOOD), hashlib.sha256(GOOD).hexdigest(), "m/g"
    )
    bad = FetchItem(httpserver.url_for(path), 3, hashlib.sha256(b"abc").hexdigest(), "m/bad")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def go() -> list[FetchResult | BaseException]:
        async with create_session() as session:
            fetcher = Fetcher(session=session, layout=layout, policy=FAST, sleep=sleep)
            return await fetch_each(fetcher, [good, bad])

    outcomes = asyncio.run(go())
    assert isinstance(outcomes[0], FetchResult)
    assert layout.blob_path(good.sha256).read_bytes() == GOOD
    error = outcomes[1]
    assert isinstance(error, RemoteError), repr(error)
    assert error.exit_code == ExitCode.REMOTE
    assert error.message.startswith("m/bad: ")
    assert bad.url in error.message
    assert not layout.blob_path(bad.sha256).exists()


def test_sync_places_every_good_file_and_exits_5_for_the_hostile_ones(
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    httpserver: HTTPServer,
    raw_server: str,
    tmp_path: Path,
) -> None:
    """`sync` against an endpoint that redirects one file to the real hub, answers another
    with a bad status line and a third with `Retry-After: ²`: the good file is placed and
    recorded, the run ends with one RemoteError (exit 5) that counts the other failure."""
    ref = hub_repo("org/m", {"good.bin": GOOD, "bad.bin": b"x" * 10, "busy.bin": b"y" * 20})
    project = tmp_path / "p"
    project.mkdir()
    manifest = project / "models.toml"
    manifest.write_text('[models.m]\nsource = "hf://org/m"\ninclude = ["*"]\n')
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    asyncio.run(lock_project(LockRequest(manifest=manifest, environ=env, retry=FAST)))
    prefix = f"/org/m/resolve/{ref.commit}"
    httpserver.expect_request(f"{prefix}/good.bin").respond_with_response(
        Response(status=302, headers={"Location": f"{hub.endpoint}{prefix}/good.bin"})
    )
    httpserver.expect_request(f"{prefix}/bad.bin").respond_with_response(
        Response(status=302, headers={"Location": raw_server + "/bad-status"})
    )
    httpserver.expect_request(f"{prefix}/busy.bin").respond_with_response(
        Response(status=302, headers={"Location": raw_server + "/superscript-retry-after"})
    )
    hostile_env = {**env, "HF_ENDPOINT": httpserver.url_for("").rstrip("/")}
    request = SyncRequest(
        manifest=manifest, store=tmp_path / "store", environ=hostile_env, retry=FAST, frozen=True
    )
    with pytest.raises(RemoteError) as caught:
        asyncio.run(sync_project(request))
    assert caught.value.exit_code == ExitCode.REMOTE
    assert "(and 1 more problems)" in caught.value.message
    target = project / "models" / "m"
    assert (target / "good.bin").read_bytes() == GOOD
    assert not (target / "bad.bin").exists()
    assert not (target / "busy.bin").exists()
    assert "good.bin" in next((project / "models" / ".modelsync").iterdir()).read_text()
