"""A LAN mirror (`serve --lock`) cannot inject bytes, serve beyond its locks, or be confused.

Clients verify what the mirror sends against their own lock; a pull-through mirror verifies
what upstream sends against the lock before it keeps or serves a byte.
"""

from __future__ import annotations

import hashlib
import http.client
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory, http_request
from tests.fixtures.mirror import (
    CONFIG,
    MIRROR_REPO,
    WEIGHTS,
    MirrorFactory,
    client_env,
    project_at,
    run_in,
)

WEIGHTS_SHA = hashlib.sha256(WEIGHTS).hexdigest()


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """The hostile upstream listens on 127.0.0.1."""
    return ("127.0.0.1", 0)


def _blob(store: Path, sha256: str) -> Path:
    return store / "blobs" / "sha256" / sha256[:2] / sha256


def _tamper(path: Path) -> None:
    """Same size, other bytes: only a hash can tell."""
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _lock_upstream(run_cli: CliRunner, tmp_path: Path, hub: ServerHandle, store: Path) -> Path:
    project = project_at(tmp_path / "a")
    result = run_in(run_cli, project, store, client_env(hub.endpoint, tmp_path), "lock")
    assert result.exit_code == 0, result.stderr
    return project.lock


def test_a_tampered_blob_in_the_mirror_fails_the_client_with_exit_4(
    hub: ServerHandle,
    upstream_repo: str,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
) -> None:
    """A mirror whose store holds wrong bytes under a locked digest serves them; the client's
    sync refuses them (exit 4), places nothing of them and keeps no such blob."""
    store = tmp_path / "mirror-store"
    lock = _lock_upstream(run_cli, tmp_path, hub, store)
    upstream_env = client_env(hub.endpoint, tmp_path)
    assert run_in(run_cli, project_at(lock.parent), store, upstream_env, "sync").exit_code == 0
    _tamper(_blob(store, WEIGHTS_SHA))
    mirror = mirror_factory("--lock", str(lock), store=store)
    client = project_at(tmp_path / "b")
    client.lock.write_bytes(lock.read_bytes())
    client_store = tmp_path / "client-store"
    env = client_env(mirror.endpoint, tmp_path)
    result = run_in(run_cli, client, client_store, env, "sync", "--frozen")
    assert result.exit_code == 4, result.stderr
    assert WEIGHTS_SHA in result.stderr
    assert not (client.placed / "weights.bin").exists()
    assert not _blob(client_store, WEIGHTS_SHA).exists()


def _refused(endpoint: str, path: str) -> bool:
    """Whether the mirror's answer is a 502 naming the mismatch, or a body cut short of its
    Content-Length (the client never takes it for the file): never a complete answer."""
    try:
        answer = http_request(endpoint, "GET", path)
    except http.client.IncompleteRead as cut:
        return len(cut.partial) < len(WEIGHTS)
    return answer.status == 502 and b"other bytes than the lock pins" in answer.body


def _wait_for_refusals(log: Path, count: int) -> None:
    """A cut answer can come before its pull ends: wait until `count` pulls were refused."""
    deadline = time.monotonic() + 30
    while log.read_text().count("serve.pull_refused") < count:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def test_pull_through_never_keeps_or_serves_wrong_upstream_bytes(  # noqa: PLR0917 - fixtures
    hub: ServerHandle,
    upstream_repo: str,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    httpserver: HTTPServer,
    tmp_path: Path,
) -> None:
    """An upstream sending other bytes than the lock pins (same size): the mirror answers
    502 or cuts the streamed answer short, keeps nothing, and a later request fetches again
    instead of trusting a bad copy."""
    store = tmp_path / "mirror-store"
    lock = _lock_upstream(run_cli, tmp_path, hub, store)
    bad = bytearray(WEIGHTS)
    bad[100] ^= 0xFF
    path = f"/{MIRROR_REPO}/resolve/{upstream_repo}/weights.bin"
    httpserver.expect_request(path).respond_with_data(bytes(bad))
    config = f"/{MIRROR_REPO}/resolve/{upstream_repo}/config.json"
    httpserver.expect_request(config).respond_with_data(CONFIG)
    upstream = httpserver.url_for("/").rstrip("/")
    mirror = mirror_factory("--lock", str(lock), "--pull-through", upstream, store=store)
    assert _refused(mirror.endpoint, f"/{MIRROR_REPO}/resolve/main/weights.bin")
    _wait_for_refusals(mirror.log, 1)
    assert not _blob(store, WEIGHTS_SHA).exists()
    asked = len(httpserver.log)
    assert _refused(mirror.endpoint, path)
    _wait_for_refusals(mirror.log, 2)
    assert len(httpserver.log) > asked
    assert not _blob(store, WEIGHTS_SHA).exists()
    assert list((store / "tmp").glob(f"{WEIGHTS_SHA}*.part")) == []


def test_pull_through_forwards_nothing_outside_the_locks(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    upstream_repo: str,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
) -> None:
    """A pull-through mirror is not an open proxy: an unlocked repo, file or commit is a 404
    and upstream sees no request for it."""
    other = hub_repo("org/other", {"secret.bin": b"s" * 100}).commit
    store = tmp_path / "mirror-store"
    lock = _lock_upstream(run_cli, tmp_path, hub, store)
    mirror = mirror_factory("--lock", str(lock), "--pull-through", hub.endpoint, store=store)
    # Listing the locked repo pulls its small locked file (its git id needs the bytes).
    assert http_request(mirror.endpoint, "GET", f"/api/models/{MIRROR_REPO}").status == 200
    before = hub.counters.requests()
    for path in (
        "/org/other/resolve/main/secret.bin",
        f"/org/other/resolve/{other}/secret.bin",
        f"/{MIRROR_REPO}/resolve/main/notes.txt",
        f"/{MIRROR_REPO}/resolve/{other}/weights.bin",
        "/api/models/org/other",
    ):
        assert http_request(mirror.endpoint, "GET", path).status == 404, path
    assert hub.counters.requests() == before


def test_two_locks_pinning_one_revision_to_two_commits_are_refused(
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    upstream_repo: str,
    run_cli: CliRunner,
    tmp_path: Path,
) -> None:
    """`main` of one repo cannot be two commits: serve exits 2 naming both locks."""
    store = tmp_path / "store"
    first = _lock_upstream(run_cli, tmp_path, hub, store)
    hub_repo(MIRROR_REPO, {"config.json": '{"moved": true}\n'})
    second = project_at(tmp_path / "second")
    env = client_env(hub.endpoint, tmp_path)
    assert run_in(run_cli, second, store, env, "lock").exit_code == 0
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelsync",
            "--store",
            str(store),
            "serve",
            "--port",
            "0",
            "--lock",
            str(first),
            "--lock",
            str(second.lock),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{first} pins {MIRROR_REPO} main at {upstream_repo} but {second.lock}" in result.stderr
