"""A large file comes in parallel byte ranges; a hostile server's pieces never corrupt it: a piece
cut mid-way restarts from its own bytes, a 200 to a piece falls back to one stream, a piece with
a wrong Content-Range is not written, and `kill -9` keeps every piece already written."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from modelsync.errors import IntegrityError, RemoteError
from modelsync.fetch.download import Fetcher, FetchItem, FetchResult, fetch_blob
from modelsync.fetch.parts import plan_pieces
from modelsync.net.retry import RetryPolicy
from modelsync.net.session import create_session
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from modelsync.store.partial import PARTS_SUFFIX, parse_journal
from tests.fixtures.hub import HubFactory, HubRepoFactory
from tests.fixtures.raw import raw_http_server

SIZE = 1 << 20
PART = 64 << 10
CONNECTIONS = 4
DATA = os.urandom(SIZE)
SHA = hashlib.sha256(DATA).hexdigest()
FAST = RetryPolicy(attempts=3, base_delay=0.01, jitter=0.0)
PIECES = plan_pieces([(0, SIZE)], connections=CONNECTIONS, part_size=PART)

Answer = Callable[[int, int, int], bytes | None]
"""(start, end inclusive, how many requests asked for this start before) → raw answer, or None
for the honest one."""


def answer_206(
    start: int, end: int, *, claimed: str | None = None, cut: int | None = None
) -> bytes:
    """A 206 for [start, end] (its Content-Range may be `claimed` instead); `cut`: send only
    that many body bytes, then close."""
    body = DATA[start : end + 1]
    head = (
        f"HTTP/1.1 206 Partial Content\r\nContent-Length: {len(body)}\r\n"
        f"Content-Range: {claimed or f'bytes {start}-{end}/{SIZE}'}\r\n"
        f'Accept-Ranges: bytes\r\nETag: "{SHA}"\r\nConnection: close\r\n\r\n'
    )
    return head.encode() + body[: len(body) if cut is None else cut]


def answer_200() -> bytes:
    """The whole file, whatever was asked."""
    head = (
        f'HTTP/1.1 200 OK\r\nContent-Length: {SIZE}\r\nETag: "{SHA}"\r\nConnection: close\r\n\r\n'
    )
    return head.encode() + DATA


@contextlib.contextmanager
def range_server(hostile: Answer) -> Iterator[tuple[str, list[str]]]:
    """A socket server on 127.0.0.1 answering Range requests for DATA (one per connection),
    with `hostile` choosing misbehaviour; yields its URL and the Range headers it saw."""
    seen: list[str] = []
    lock = threading.Lock()

    def reply(head: bytes) -> bytes:
        match = re.search(rb"\r\nRange: bytes=(\d+)-(\d*)\r\n", head, re.IGNORECASE)
        if match is None:
            with lock:
                seen.append("")
            return answer_200()
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else SIZE - 1
        with lock:
            before = sum(s.startswith(f"bytes={start}-") for s in seen)
            seen.append(match.group(0).decode().strip().split(": ", 1)[1])
        return hostile(start, end, before) or answer_206(start, end)

    with raw_http_server(reply) as url:
        yield f"{url}/big.bin", seen


def fetch(url: str, store: Path) -> FetchResult:
    """Fetch DATA from `url` in pieces of PIECES over CONNECTIONS connections."""

    async def main() -> FetchResult:
        async with create_session() as session:
            fetcher = Fetcher(
                session=session,
                layout=StoreLayout(store),
                policy=FAST,
                connections=CONNECTIONS,
                part_size=PART,
                fsync=False,
            )
            return await fetch_blob(fetcher, FetchItem(url, SIZE, SHA, "m/big.bin"))

    return asyncio.run(main())


def stored(store: Path) -> bytes:
    return StoreLayout(store).blob_path(SHA).read_bytes()


def test_an_honest_server_gets_every_piece_once_the_first_alone(tmp_path: Path) -> None:
    """Each piece is asked for exactly once, and the first before any other."""
    with range_server(lambda *_: None) as (url, seen):
        result = fetch(url, tmp_path / "store")
    assert stored(tmp_path / "store") == DATA
    assert len(PIECES) == CONNECTIONS
    assert seen[0] == f"bytes=0-{PIECES[0][1] - 1}"
    assert sorted(seen) == sorted(f"bytes={a}-{b - 1}" for a, b in PIECES)
    assert result.received == SIZE
    assert list((tmp_path / "store" / "tmp").iterdir()) == []  # no partial, no journal left


def test_a_piece_cut_midway_restarts_from_its_own_bytes(tmp_path: Path) -> None:
    """The retry of a cut piece asks only for the bytes after the cut."""
    start, end = PIECES[2]
    half = (end - start) // 2

    def hostile(first: int, last: int, before: int) -> bytes | None:
        return answer_206(first, last, cut=half) if first == start and not before else None

    with range_server(hostile) as (url, seen):
        fetch(url, tmp_path / "store")
    assert stored(tmp_path / "store") == DATA
    assert f"bytes={start + half}-{end - 1}" in seen
    assert seen.count(f"bytes={start}-{end - 1}") == 1


def test_a_piece_answered_with_200_falls_back_to_one_stream(tmp_path: Path) -> None:
    """A 200 to a piece's range is not written at the piece's place: the rest comes as one
    stream from the gap-free prefix, and the file is right."""
    start, _end = PIECES[2]

    def hostile(first: int, last: int, before: int) -> bytes | None:
        return answer_200() if first == start and not before else None

    with range_server(hostile) as (url, seen):
        fetch(url, tmp_path / "store")
    assert stored(tmp_path / "store") == DATA
    assert any(re.fullmatch(r"bytes=\d+-", s) for s in seen)  # one open-ended stream


def test_a_piece_with_a_shifted_content_range_is_retried_not_written(tmp_path: Path) -> None:
    """A 206 that carries other bytes than the piece asked for is dropped and asked again."""
    start, end = PIECES[1]

    def hostile(first: int, last: int, before: int) -> bytes | None:
        shifted = f"bytes {first + 1}-{last}/{SIZE}"
        return answer_206(first, last, claimed=shifted) if first == start and not before else None

    with range_server(hostile) as (url, seen):
        fetch(url, tmp_path / "store")
    assert stored(tmp_path / "store") == DATA
    assert seen.count(f"bytes={start}-{end - 1}") == 2


def test_a_piece_naming_another_file_size_fails_with_exit_4(tmp_path: Path) -> None:
    """A Content-Range total other than the pinned size is other bytes: one re-fetch, then an
    integrity error naming the file."""
    start, _end = PIECES[3]

    def hostile(first: int, last: int, _before: int) -> bytes | None:
        wrong = f"bytes {first}-{last}/{SIZE + 1}"
        return answer_206(first, last, claimed=wrong) if first == start else None

    with range_server(hostile) as (url, _seen), pytest.raises(IntegrityError) as caught:
        fetch(url, tmp_path / "store")
    assert "m/big.bin" in caught.value.message
    assert caught.value.exit_code == 4
    assert not StoreLayout(tmp_path / "store").blob_path(SHA).exists()


def test_a_piece_that_keeps_failing_fails_the_file_naming_its_bytes(tmp_path: Path) -> None:
    """A piece answered 503 every time: exit 5 naming its byte range; the other pieces stay
    in the partial for the next run."""
    start, end = PIECES[2]

    def hostile(first: int, _last: int, _before: int) -> bytes | None:
        busy = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        return busy if first == start else None

    with range_server(hostile) as (url, _seen), pytest.raises(RemoteError) as caught:
        fetch(url, tmp_path / "store")
    assert f"bytes {start}-{end - 1} failed after 3 attempts (HTTP 503)" in caught.value.message
    assert caught.value.exit_code == 5
    [journal] = (tmp_path / "store" / "tmp").glob(f"*{PARTS_SUFFIX}")
    assert parse_journal(journal.read_text(), SIZE).prefix() == start


CHILD = """
import asyncio, sys
from pathlib import Path
from modelsync.fetch.download import Fetcher, FetchItem, fetch_blob
from modelsync.net.session import create_session
from modelsync.store.layout import StoreLayout

async def main() -> None:
    url, size, sha, store = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    part, connections = int(sys.argv[5]), int(sys.argv[6])
    async with create_session() as session:
        fetcher = Fetcher(
            session=session, layout=StoreLayout(store), connections=connections, part_size=part
        )
        await fetch_blob(fetcher, FetchItem(url, size, sha, "m/big.bin"))

asyncio.run(main())
"""


def test_kill_9_keeps_every_piece_written(hub_factory: HubFactory, tmp_path: Path) -> None:
    """After `kill -9` with some pieces done, the next run asks only for the bytes the journal
    does not list, from the project's server behind a capped, slow-to-answer CDN."""
    hub: ServerHandle = hub_factory(rate_cap=512 << 10, first_byte_delay_s=0.02)
    ref = HubRepoFactory(hub)("org/big", {"big.bin": DATA})
    url = f"{hub.endpoint}/org/big/resolve/{ref.commit}/big.bin"
    part, connections = 8 << 10, 2
    pieces = plan_pieces([(0, SIZE)], connections=connections, part_size=part)
    assert len(pieces) > 2 * connections  # several rounds: some pieces end before others start
    layout = StoreLayout(tmp_path / "store")
    argv = [sys.executable, "-c", CHILD, url, str(SIZE), SHA, str(layout.root)]
    argv += [str(part), str(connections)]
    child = subprocess.Popen(argv)
    held = 0
    deadline = time.monotonic() + 30
    while held < pieces[connections][1] and time.monotonic() < deadline:
        time.sleep(0.01)
        for journal in layout.tmp_dir.glob(f"*{PARTS_SUFFIX}") if layout.tmp_dir.exists() else []:
            with contextlib.suppress(FileNotFoundError):
                held = parse_journal(journal.read_text(), SIZE).prefix()
    child.send_signal(signal.SIGKILL)
    child.wait()
    [journal] = layout.tmp_dir.glob(f"*{PARTS_SUFFIX}")
    spans = parse_journal(journal.read_text(), SIZE)
    assert pieces[connections][1] <= spans.prefix()  # a round of pieces is done
    assert spans.total() < SIZE
    before = hub.repos.counters.bytes_sent("org/big", "big.bin")

    rerun = subprocess.run(argv, check=False, timeout=60)
    assert rerun.returncode == 0
    assert layout.blob_path(SHA).read_bytes() == DATA
    resent = hub.repos.counters.bytes_sent("org/big", "big.bin") - before
    assert resent == SIZE - spans.total()
    assert list(layout.tmp_dir.iterdir()) == []
