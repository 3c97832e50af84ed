"""`modelsync push` killed or raced mid-upload, for real: a `push` child process is stopped
by SIGKILL with parts of a multipart upload sent, and two pushes of one blob run at once.

To make "some parts are sent" deterministic without sleeps, the remote is moto's server
behind a small gate on 127.0.0.1 that forwards every request but holds the first UploadPart
numbered 3 until told: with `--jobs 1` the parts go in order, so once the gate holds part 3,
parts 1 and 2 are in the upload."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state
from tests.cli.test_push import WEIGHTS_SHA, events, weights_key
from tests.fixtures.cli import CliResult, CliRunner
from tests.fixtures.projects import TINY_WEIGHTS
from tests.fixtures.s3 import S3Bucket

PART = 2097  # --part-size 0.002 (MiB): TINY_WEIGHTS is three parts, 2097 + 2097 + 806 bytes
HELD_PART = 3
_HOP = frozenset({"host", "content-length", "transfer-encoding", "connection", "expect"})


@dataclass
class Gate:
    """What the gate in front of moto does: it holds the first UploadPart numbered HELD_PART
    until `release` is set."""

    url: str
    holding: threading.Event = field(default_factory=threading.Event)
    """Set once the held request has arrived (parts before it are answered)."""
    release: threading.Event = field(default_factory=threading.Event)
    drop_held: bool = False
    """On release, answer the held request 503 instead of forwarding it (its client is gone)."""


@pytest.fixture
def gate(s3_bucket: S3Bucket) -> Iterator[Gate]:
    """The gate, in its own thread and event loop, forwarding to the bucket's moto server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    found = Gate(f"http://127.0.0.1:{sock.getsockname()[1]}")
    upstream = s3_bucket.server.endpoint
    held = threading.Lock()

    async def forward(request: web.Request) -> web.Response:
        if request.query.get("partNumber") == str(HELD_PART) and held.acquire(blocking=False):
            found.holding.set()
            await asyncio.to_thread(found.release.wait)
            if found.drop_held:
                return web.Response(status=503)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                URL(upstream + request.raw_path, encoded=True),
                headers=headers,
                data=await request.read(),
            ) as answer,
        ):
            body = await answer.read()
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP}
            if request.method == "HEAD":  # no body: the object's size is the header's
                kept["Content-Length"] = answer.headers.get("Content-Length", "0")
                return web.Response(status=answer.status, headers=kept)
            return web.Response(status=answer.status, body=body, headers=kept)

    app = web.Application(client_max_size=16 << 20)
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield found
    found.release.set()
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def gated_project(
    pushed_project: dict[str, str], s3_bucket: S3Bucket, gate: Gate
) -> dict[str, str]:
    """The synced tiny project, its remote reached through the gate."""
    manifest = Path("models.toml")
    manifest.write_text(manifest.read_text().replace(s3_bucket.server.endpoint, gate.url))
    return pushed_project


def start_push(env: dict[str, str], cli_env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """`modelsync push --part-size 0.002 --jobs 1 ARGS` as a child process."""
    argv = [sys.executable, "-m", "modelsync", *args, "push", "--part-size", "0.002"]
    return subprocess.Popen(
        [*argv, "--jobs", "1"],
        env={**os.environ, **cli_env, **env},
        cwd=Path.cwd(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(child: subprocess.Popen[str]) -> CliResult:
    stdout, stderr = child.communicate(timeout=60)
    return CliResult(child.returncode, stdout, stderr)


def held_parts(bucket: S3Bucket) -> list[int]:
    """The part numbers of the one open upload of the weights' key."""
    client = bucket.client
    [upload] = client.list_multipart_uploads(Bucket=bucket.name)["Uploads"]
    parts = client.list_parts(Bucket=bucket.name, Key=weights_key(), UploadId=upload["UploadId"])
    return sorted(int(p["PartNumber"]) for p in parts.get("Parts", ()))


def test_a_push_killed_mid_upload_is_resumed_by_the_next_with_its_parts_reused(
    gated_project: dict[str, str], cli_env: dict[str, str], s3_bucket: S3Bucket, gate: Gate
) -> None:
    """SIGKILL a `push` child once two of the weights' three parts are uploaded: the blob is
    not visible under its key; the next push keeps those two parts, sends only the third, and
    the object reads back as the blob."""
    child = start_push(gated_project, cli_env)
    try:
        assert gate.holding.wait(30), "the push never reached part 3"
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert held_parts(s3_bucket) == [1, 2]
    assert weights_key() not in s3_bucket.objects()

    gate.drop_held = True  # the killed push's part 3 must not reach moto now
    gate.release.set()
    rerun = finish(start_push(gated_project, cli_env, "--json"))
    assert rerun.exit_code == 0, rerun.stderr
    uploads = {u["file"]: u for u in events(rerun, "report")[0]["upload"]}  # type: ignore[attr-defined]
    assert uploads["tiny/weights.bin"]["parts_reused"] == 2
    assert uploads["tiny/weights.bin"]["sent"] == len(TINY_WEIGHTS) - 2 * PART
    assert [e["parts"] for e in events(rerun, "remote.upload_resumed")] == [2]
    assert s3_bucket.get(weights_key()) == TINY_WEIGHTS
    assert not s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")


def test_two_pushes_of_one_blob_at_once_both_succeed(
    gated_project: dict[str, str],
    cli_env: dict[str, str],
    s3_bucket: S3Bucket,
    gate: Gate,
    run_cli: CliRunner,
) -> None:
    """Two machines push the same large blob at once: the second finds the first's open upload,
    adds the missing part and completes it; the first, whose last part then meets a finished
    upload, sees the blob in place and exits 0 too (not 5)."""
    first = start_push(gated_project, cli_env)
    try:
        assert gate.holding.wait(30), "the first push never reached part 3"
        second = run_cli("push", "--part-size", "0.002", "--json", env=gated_project)
        assert second.exit_code == 0, second.stderr
        gate.release.set()
        result = finish(first)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert result.exit_code == 0, result.stderr
    assert "completed by another push" in result.stderr
    assert s3_bucket.get(weights_key()) == TINY_WEIGHTS
    assert not s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")


def rot(store: Path, sha256: str, data: bytes) -> None:
    """Change the blob's bytes (same size) under a stat cache that still vouches for it, as
    silent disk corruption would: the cache is told the new stat."""
    layout = StoreLayout(store)
    blob = layout.blob_path(sha256)
    blob.chmod(0o644)
    blob.write_bytes(data)
    blob.chmod(0o444)
    with open_state(layout.state_path) as state:
        state.record(blob, blob.stat(), sha256)


@pytest.mark.parametrize("part_size", ["0.002", "64"])
def test_a_store_blob_gone_bad_under_its_stat_is_never_uploaded(
    pushed_project: dict[str, str],
    cli_env: dict[str, str],
    s3_bucket: S3Bucket,
    run_cli: CliRunner,
    part_size: str,
) -> None:
    """A blob whose bytes went bad after admission, with a stat cache that still vouches for
    it, is not made visible on the remote, in one PUT or in parts (whose per-part checksums
    are computed from the bad bytes): exit 4 naming it and the command that finds it."""
    rot(Path(cli_env["MODELSYNC_STORE"]), WEIGHTS_SHA, b"X" * len(TINY_WEIGHTS))
    result = run_cli("push", "--part-size", part_size, env=pushed_project)
    assert result.exit_code == 4, result.stderr
    assert weights_key() not in s3_bucket.objects()
    [error] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert WEIGHTS_SHA in error
    assert "modelsync sync --repair" in error
    assert not s3_bucket.client.list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads")
