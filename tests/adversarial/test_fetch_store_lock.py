"""A slow download does not hold the store lock: another project's `sync --no-wait` on the same
store completes while it is in progress (design.md section 3); two runs still never download
one blob twice."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from hashlib import sha256
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_blob
from modelsync.net.session import create_session
from modelsync.ops.lock import LockRequest, lock_project
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

SLOW = os.urandom(300_000)
FAST = os.urandom(50_000)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1."""
    return ("127.0.0.1", 0)


def project(folder: Path, repo: str) -> Path:
    folder.mkdir()
    manifest = folder / "models.toml"
    manifest.write_text(f'[models.m]\nsource = "hf://{repo}"\ninclude = ["*"]\n')
    return manifest


def test_another_projects_sync_completes_during_a_slow_download(
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    httpserver: HTTPServer,
    tmp_path: Path,
    run_cli: CliRunner,
) -> None:
    """While a `sync` process receives a file that has stopped halfway, `sync --no-wait` of
    another project on the same store exits 0 with its file placed; once the slow file goes
    on, its sync finishes too."""
    slow_ref = hub_repo("org/slow", {"slow.bin": SLOW})
    hub_repo("org/fast", {"fast.bin": FAST})
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    slow_manifest = project(tmp_path / "slow", "org/slow")
    fast_manifest = project(tmp_path / "fast", "org/fast")
    asyncio.run(lock_project(LockRequest(manifest=slow_manifest, environ=env)))

    started, release = threading.Event(), threading.Event()

    def halfway_then_wait(_request: Request) -> Response:
        def body() -> Iterator[bytes]:
            yield SLOW[: len(SLOW) // 2]
            started.set()
            release.wait(30)
            yield SLOW[len(SLOW) // 2 :]

        return Response(body(), headers={"Content-Length": str(len(SLOW))})

    httpserver.expect_request(f"/org/slow/resolve/{slow_ref.commit}/slow.bin").respond_with_handler(
        halfway_then_wait
    )
    # run_cli's fixture put the test's store in MODELSYNC_STORE
    slow_env = {**os.environ, **env, "HF_ENDPOINT": httpserver.url_for("").rstrip("/")}
    slow = subprocess.Popen(
        [sys.executable, "-m", "modelsync", "sync", "--frozen"],
        cwd=slow_manifest.parent,
        env=slow_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert started.wait(30), "the slow download never started"
        fast = run_cli("-m", str(fast_manifest), "sync", "--no-wait", env=env)
        assert fast.exit_code == 0, fast.stderr
        assert (tmp_path / "fast" / "models" / "m" / "fast.bin").read_bytes() == FAST
        assert slow.poll() is None  # the slow file was still on its way
    finally:
        release.set()
        _out, err = slow.communicate(timeout=60)
    assert slow.returncode == 0, err
    assert (tmp_path / "slow" / "models" / "m" / "slow.bin").read_bytes() == SLOW


def test_two_fetches_of_one_blob_at_once_download_it_once(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Two fetchers (as two runs would) ask for the same blob while no store lock orders them:
    one downloads it, the other waits for it and finds it in the store; one GET in all."""
    data = os.urandom(2_000_000)
    gets: list[str] = []

    def slowish(request: Request) -> Response:
        gets.append(request.path)

        def body() -> Iterator[bytes]:
            for offset in range(0, len(data), 200_000):
                time.sleep(0.01)
                yield data[offset : offset + 200_000]

        return Response(body(), headers={"Content-Length": str(len(data))})

    httpserver.expect_request("/blob.bin").respond_with_handler(slowish)
    layout = StoreLayout(tmp_path / "store")
    item = FetchItem(httpserver.url_for("/blob.bin"), len(data), sha256(data).hexdigest(), "m/b")

    async def go() -> list[FetchResult]:
        async with create_session() as one, create_session() as two:
            return list(
                await asyncio.gather(
                    fetch_blob(Fetcher(session=one, layout=layout, fsync=False), item),
                    fetch_blob(Fetcher(session=two, layout=layout, fsync=False), item),
                )
            )

    results = asyncio.run(go())
    assert gets == ["/blob.bin"]
    assert sorted(r.received for r in results) == [0, len(data)]
    assert layout.blob_path(item.sha256).read_bytes() == data
    assert list(layout.tmp_dir.iterdir()) == []
