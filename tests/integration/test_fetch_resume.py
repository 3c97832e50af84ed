"""Resume across processes: a download killed with SIGKILL is finished by the next run."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from modelsync.store.layout import StoreLayout
from modelsync.store.partial import claim_partial, is_in_use

SIZE = 8 << 20
STEP = 256 << 10

CHILD = """
import asyncio, sys
from pathlib import Path
from modelsync.fetch.download import Fetcher, FetchItem, fetch_blob
from modelsync.net.session import create_session
from modelsync.store.layout import StoreLayout

async def main() -> None:
    url, size, sha, store = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    async with create_session() as session:
        fetcher = Fetcher(session=session, layout=StoreLayout(store), connections=1)
        await fetch_blob(fetcher, FetchItem(url, size, sha, "m/big.bin"))

asyncio.run(main())
"""


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1."""
    return ("127.0.0.1", 0)


def test_kill_9_then_rerun_sends_only_the_missing_bytes(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """After `kill -9` at about half, a new process re-sends at most the missing half (+1 chunk)."""
    data = os.urandom(SIZE)
    sha = hashlib.sha256(data).hexdigest()
    sent: list[int] = []

    def slow_file(request: Request) -> Response:
        start = int((request.headers.get("Range") or "bytes=0-")[6:].rstrip("-"))
        body = data[start:]
        sent.append(0)

        def stream() -> Iterator[bytes]:
            for offset in range(0, len(body), STEP):
                time.sleep(0.02)
                sent[-1] += len(body[offset : offset + STEP])
                yield body[offset : offset + STEP]

        headers = {"Content-Length": str(len(body)), "ETag": f'"{sha}"'}
        if start:
            headers["Content-Range"] = f"bytes {start}-{SIZE - 1}/{SIZE}"
        return Response(stream(), status=206 if start else 200, headers=headers)

    httpserver.expect_request("/big.bin").respond_with_handler(slow_file)
    layout = StoreLayout(tmp_path / "store")
    args = [sys.executable, "-c", CHILD, httpserver.url_for("/big.bin"), str(SIZE), sha]
    child = subprocess.Popen([*args, str(layout.root)])
    partial_size = 0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and partial_size < SIZE // 2:
        time.sleep(0.01)
        sizes = (
            [p.stat().st_size for p in layout.tmp_dir.glob("*.part")]
            if layout.tmp_dir.exists()
            else []
        )
        partial_size = max(sizes, default=0)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert SIZE // 2 <= partial_size < SIZE
    kept = max(p.stat().st_size for p in layout.tmp_dir.glob("*.part"))

    rerun = subprocess.run([*args, str(layout.root)], check=False, timeout=60)
    assert rerun.returncode == 0
    assert layout.blob_path(sha).read_bytes() == data
    assert sent[-1] == SIZE - kept
    assert sent[-1] <= SIZE * 0.52
    assert list(layout.tmp_dir.iterdir()) == []


def test_a_live_partial_is_never_adopted(tmp_path: Path) -> None:
    """While one owner holds a partial, a second claim starts its own file instead of sharing."""
    layout = StoreLayout(tmp_path / "store")
    sha = "ab" * 32
    first = claim_partial(layout, sha)
    first.write(b"x" * 100)
    assert is_in_use(first.path)
    second = claim_partial(layout, sha)
    try:
        assert second.path != first.path
        assert second.size == 0
        assert first.path.exists()
    finally:
        second.close()
        first.close()
    assert not is_in_use(first.path)
    third = claim_partial(layout, sha)
    try:
        assert third.size == 100  # the orphan is adopted once its owner is gone
        assert not first.path.exists()
    finally:
        third.close()
