"""A cold pull-through mirror streams a large file as upstream sends it, and never lets a
client take unverified bytes for the whole file.

The upstream here sends the first part of the file, then holds the rest until the test opens
its gate: whatever the client reads before that came from the growing partial, with no clock
involved. A mirror that waited for the whole pull would make the client's read time out.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import hf_hub_download
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory
from tests.fixtures.mirror import CONFIG, MIRROR_REPO, MirrorFactory, client_env, project_at, run_in

MIB = 1 << 20
DATA = hashlib.sha256(b"stream").digest() * (3 * MIB // 32)  # 3 MiB: one stream, three slots
DATA_SHA = hashlib.sha256(DATA).hexdigest()
HELD_AT = MIB + MIB // 2
"""Upstream sends this many bytes, then waits for the gate."""
READ_TIMEOUT_S = 10.0
"""A client's wait for bytes: far more than a streaming mirror needs on a loaded machine."""
WEIGHTS_PATH = f"/{MIRROR_REPO}/resolve/main/weights.bin"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """The gated upstream listens on 127.0.0.1."""
    return ("127.0.0.1", 0)


@dataclass
class Gated:
    """The upstream's state: bytes of weights.bin sent so far, and the gate."""

    gate: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    requests: int = 0


@pytest.fixture
def gated() -> Iterator[Gated]:
    """Opened at the end of the test too, so no upstream answer outlives it."""
    state = Gated()
    yield state
    state.gate.set()


def _serve_gated(httpserver: HTTPServer, commit: str, state: Gated, body: bytes) -> str:
    """Upstream for the locked commit: config.json at once, weights.bin held at HELD_AT."""

    def weights(request: Request) -> Response:
        state.requests += 1

        def stream() -> Iterator[bytes]:
            for n, piece in enumerate((body[:HELD_AT], body[HELD_AT:])):
                if n and not state.gate.wait(30):
                    return
                state.sent += len(piece)
                yield piece

        return Response(stream(), headers={"Content-Length": str(len(body)), "ETag": '"v1"'})

    base = f"/{MIRROR_REPO}/resolve/{commit}"
    httpserver.expect_request(f"{base}/config.json").respond_with_data(CONFIG)
    httpserver.expect_request(f"{base}/weights.bin").respond_with_handler(weights)
    return httpserver.url_for("/").rstrip("/")


def _blob(store: Path) -> Path:
    return store / "blobs" / "sha256" / DATA_SHA[:2] / DATA_SHA


@dataclass(frozen=True)
class Setup:
    lock: Path
    store: Path
    endpoint: str
    log: Path


def _cold_mirror(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    httpserver: HTTPServer,
    gated: Gated,
    tmp_path: Path,
    body: bytes = DATA,
) -> Setup:
    """A lock of `org/tiny` (3 MiB weights.bin), and a cold mirror of it pulling through the
    gated upstream, which sends `body` for weights.bin."""
    commit = hub_repo(MIRROR_REPO, {"weights.bin": DATA, "config.json": CONFIG}).commit
    store = tmp_path / "mirror-store"
    project = project_at(tmp_path / "a")
    env = client_env(hub.endpoint, tmp_path)
    assert run_in(run_cli, project, store, env, "lock").exit_code == 0
    upstream = _serve_gated(httpserver, commit, gated, body)
    mirror = mirror_factory("--lock", str(project.lock), "--pull-through", upstream, store=store)
    return Setup(project.lock, store, mirror.endpoint, mirror.log)


@pytest.fixture
def cold_mirror(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    httpserver: HTTPServer,
    gated: Gated,
    tmp_path: Path,
) -> Setup:
    """A cold mirror whose upstream sends the locked bytes."""
    return _cold_mirror(hub, hub_repo, run_cli, mirror_factory, httpserver, gated, tmp_path)


@pytest.fixture
def lying_mirror(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    httpserver: HTTPServer,
    gated: Gated,
    tmp_path: Path,
) -> Setup:
    """A cold mirror whose upstream changes the last byte (same size: only the hash tells)."""
    bad = bytearray(DATA)
    bad[-1] ^= 0xFF
    return _cold_mirror(
        hub, hub_repo, run_cli, mirror_factory, httpserver, gated, tmp_path, bytes(bad)
    )


@contextlib.contextmanager
def _get(
    endpoint: str, headers: dict[str, str] | None = None
) -> Iterator[http.client.HTTPResponse]:
    """A GET of weights.bin through the mirror, its body not read yet."""
    url = urlsplit(endpoint)
    assert url.hostname is not None
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=READ_TIMEOUT_S)
    try:
        conn.request("GET", WEIGHTS_PATH, headers=headers or {})
        yield conn.getresponse()
    finally:
        conn.close()


def _wait_for(path: Path) -> bool:
    """Whether `path` appears within a generous bound (a condition polled, not a timing)."""
    return _until(path.exists)


def _wait_for_text(log: Path, text: str) -> bool:
    """Whether the mirror logs `text` within a generous bound."""
    return _until(lambda: text in log.read_text())


def _until(done: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 30
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_cold_file_streams_while_upstream_still_sends(
    cold_mirror: Setup, gated: Gated, tmp_path: Path
) -> None:
    """The client reads the first bytes while upstream still holds most of the file; a
    Range into the part not yet arrived and an `hf_hub_download` started meanwhile wait for
    it; all get exactly the locked bytes from the one pull, and the mirror keeps the blob."""
    ranges: list[tuple[int, str | None, bytes]] = []
    downloads: list[Path] = []

    def ranged() -> None:  # asks for bytes upstream has not sent yet
        with _get(cold_mirror.endpoint, {"Range": "bytes=2500000-2500099"}) as answer:
            ranges.append((answer.status, answer.getheader("Content-Range"), answer.read()))

    def hub_client() -> None:
        got = hf_hub_download(
            MIRROR_REPO, "weights.bin", endpoint=cold_mirror.endpoint, cache_dir=tmp_path / "hf"
        )
        downloads.append(Path(got))

    with _get(cold_mirror.endpoint) as response:
        assert response.status == 200
        assert response.getheader("Content-Length") == str(len(DATA))
        first = response.read(64 << 10)
        assert first == DATA[: 64 << 10]
        assert gated.sent < len(DATA)  # upstream has not sent the rest: it waits for the gate
        others = [threading.Thread(target=ranged), threading.Thread(target=hub_client)]
        for thread in others:
            thread.start()
        gated.gate.set()
        rest = response.read()
        for thread in others:
            thread.join(READ_TIMEOUT_S * 2)
    assert hashlib.sha256(first + rest).hexdigest() == DATA_SHA
    assert ranges == [(206, f"bytes 2500000-2500099/{len(DATA)}", DATA[2500000:2500100])]
    assert [p.read_bytes() == DATA for p in downloads] == [True]
    assert _wait_for(_blob(cold_mirror.store))
    assert gated.requests == 1  # one pull served every client


def test_a_stream_of_bytes_that_fail_verification_is_cut(lying_mirror: Setup, gated: Gated) -> None:
    """Upstream's bytes turn out wrong after the client got the first of them: the client's
    answer is cut short (never a complete body), and the mirror keeps no blob or partial."""
    with _get(lying_mirror.endpoint) as response:
        first = response.read(64 << 10)
        assert first == DATA[: 64 << 10]
        assert gated.sent < len(DATA)
        gated.gate.set()
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    assert len(first) + len(cut.value.partial) < len(DATA)
    assert _wait_for_text(lying_mirror.log, "serve.pull_refused")
    assert not _blob(lying_mirror.store).exists()
    assert list((lying_mirror.store / "tmp").glob(f"{DATA_SHA}*.part")) == []
    assert gated.requests == 2  # fetched again once before refusing: still wrong


def test_a_client_leaving_mid_stream_does_not_stop_the_pull(
    cold_mirror: Setup, gated: Gated, run_cli: CliRunner, tmp_path: Path
) -> None:
    """The client goes away after the first bytes; the pull completes, the blob is admitted,
    and a sync through the mirror then gets the file from the store."""
    with _get(cold_mirror.endpoint) as response:
        assert response.read(64 << 10) == DATA[: 64 << 10]
    gated.gate.set()
    assert _wait_for(_blob(cold_mirror.store))
    client = project_at(tmp_path / "b")
    client.lock.write_bytes(cold_mirror.lock.read_bytes())
    env = client_env(cold_mirror.endpoint, tmp_path)
    result = run_in(run_cli, client, tmp_path / "client-store", env, "sync", "--frozen")
    assert result.exit_code == 0, result.stderr
    assert (client.placed / "weights.bin").read_bytes() == DATA
    assert gated.requests == 1


def test_a_sync_through_a_cold_mirror_gets_bytes_before_upstream_finished(
    cold_mirror: Setup, gated: Gated, run_cli_process: CliRunner, tmp_path: Path
) -> None:
    """`modelsync sync` (a real process) through the cold mirror writes the first bytes of the
    file into its own partial while upstream still holds the rest, then places the file."""
    client = project_at(tmp_path / "b")
    client.lock.write_bytes(cold_mirror.lock.read_bytes())
    client_store = tmp_path / "client-store"
    env = client_env(cold_mirror.endpoint, tmp_path)
    results = []

    def sync() -> None:
        args = ("-m", str(client.manifest), "--store", str(client_store), "sync", "--frozen")
        results.append(run_cli_process(*args, env=env))

    syncing = threading.Thread(target=sync)
    syncing.start()
    partials = client_store / "tmp"

    def got_bytes() -> bool:
        return any(p.stat().st_size >= MIB for p in partials.glob(f"{DATA_SHA}*.part"))

    try:
        assert _until(got_bytes)
        assert gated.sent < len(DATA)  # the client has bytes upstream is still holding back
    finally:
        gated.gate.set()
        syncing.join(60)
    assert results[0].exit_code == 0, results[0].stderr
    assert (client.placed / "weights.bin").read_bytes() == DATA
    assert gated.requests == 1
