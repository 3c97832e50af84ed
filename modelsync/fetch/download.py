"""Download one pinned file into the store, or many at once.

Bytes stream into a claimed partial in `<store>/tmp/` while a worker thread hashes them; only a
file whose size and SHA-256 equal the pin is renamed into `blobs/`, under the store lock
(`Fetcher.admit`), which is never held while bytes arrive. One process fetches a blob at a
time; others wait for it. Transient failures (reset, timeout, short body, 408/429/5xx, a
malformed answer, less than the policy's minimum speed) are retried with backoff from the
bytes already received; a partial that already holds every byte costs no request; a digest
mismatch discards the bytes and re-fetches once, then fails with exit 4. Every failure is
one file's ModelsyncError, never an exception that stops the others.

A large file goes over several connections at once (fetch/parts.py): the first piece's request
resolves any redirect and proves the server answers ranges (a 206); the other pieces then go to
the final URL (no `Authorization` to another origin: net/session.py's rule). Each piece is
written in place with `pwrite` and journaled (store/partial.py), is retried from its own bytes,
and the hashing thread follows the partial's gap-free prefix. A server that answers a piece
with a 200 gets one stream instead, from the gap-free prefix kept.

A blob remote's URLs (`FetchItem.mirrors`) are tried before the registry, into the same partial:
a 404 there means the remote lacks the blob (the next source, quietly); bytes that do not hash
to the pin are dropped at once and the registry is asked (`remote.corrupt`, never exit 4 unless
the registry's bytes are wrong too); a remote that refuses or fails is skipped for the rest of
the run (`remote.unavailable`) after fewer retries than a registry gets: it is a cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from modelsync.errors import AuthError, BusyError, IntegrityError, RemoteError
from modelsync.fetch.body import BodyCut, BodySink, BodyTooLong, receive
from modelsync.fetch.hashing import StreamHasher
from modelsync.fetch.parts import PART_MIN, Piece, plan_pieces, worth_parts
from modelsync.fetch.progress import NoProgress, ProgressSink
from modelsync.fetch.sources import Mirror
from modelsync.log import get_logger, redact_url
from modelsync.net.retry import RETRYABLE_STATUS, RetryPolicy, retry_after_seconds
from modelsync.net.session import Credentials, origin_of
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import unguarded
from modelsync.store.partial import (
    Partial,
    claim_partial,
    release_fetch_lock,
    try_fetch_lock,
)

log = get_logger(__name__)

# How often a run waiting for another's download of the same blob looks again.
FETCH_LOCK_POLL = 0.1
_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+|\*)")  # ASCII digits only


@dataclass(frozen=True, slots=True)
class FetchItem:
    """One file to fetch: where from, and the size and SHA-256 it must have."""

    url: str
    size: int
    sha256: str
    label: str  # how messages name it, e.g. "gemma/gemma-3-1b-it-Q4_K_M.gguf"
    mirrors: tuple[Mirror, ...] = ()
    """Blob remotes to try first, in order (`url` is the registry's: the last resort)."""


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What fetching one file took."""

    item: FetchItem
    received: int  # bytes that came over the network in this run
    resumed_from: int  # bytes of an earlier run's partial that were reused
    attempts: int
    seconds: float
    remote: str | None = None
    """The blob remote the bytes came from; None: the registry (or an earlier partial)."""

    @property
    def admitted(self) -> bool:
        """Whether this run put the blob into the store (not found it there, e.g. after
        waiting for another run that fetched it)."""
        return bool(self.attempts or self.resumed_from)


@dataclass(frozen=True, slots=True)
class Fetcher:
    """Everything a download needs besides the file itself."""

    session: aiohttp.ClientSession
    layout: StoreLayout
    credentials: Credentials = field(default_factory=Credentials)
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    progress: ProgressSink = field(default_factory=NoProgress)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rand: Callable[[], float] = random.random
    fsync: bool = True
    """Wait for each blob to reach the disk; False where the state cache tracks pending blobs
    (fsync measured 0.9 GiB/s here: 40% of a 2 GiB download's wall time)."""
    admit: Callable[[], AbstractAsyncContextManager[None]] = unguarded
    """Held around each blob's rename into `blobs/`: the store lock when the caller does not
    hold it already (design.md section 3)."""
    wait: bool = True
    """Wait while another run downloads the same blob; False (`--no-wait`): BusyError."""
    wait_s: float | None = None
    """At most this many seconds (`--wait-timeout`), then BusyError; None: no limit."""
    connections: int = 8
    """Connections for one large file (`sync --connections`); 1: always one stream."""
    solo_probe: tuple[int, float] | None = None
    """(bytes, seconds): when the first piece brings that many bytes within that time, one
    stream already outruns what splitting could add here (loopback, a LAN mirror), so the file
    continues as one stream; the other connections open only after `seconds` otherwise. None:
    split whenever the file is large enough (an explicit `--connections`)."""
    part_size: int = PART_MIN
    """The smallest piece given its own connection; files under two parts take one stream."""
    skip: set[str] = field(default_factory=set)
    """Blob remotes that refused or failed in this run: not asked again."""
    watch: Callable[[FetchItem, Partial], None] | None = None
    """Told on the event loop whenever a partial's gap-free prefix (`Partial.size`) may have
    moved or was reset to zero: a LAN mirror streams the prefix to its clients as it grows."""


REMOTE_ATTEMPTS = 2
"""Attempts per request to a blob remote: it is a cache, the registry is the truth."""
REMOTE_REFUSED_FIX = (
    "give it working credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE or "
    "the remote's profile"
)
REMOTE_DOWN_FIX = "check the remote's endpoint-url, region and network"


# Slots per piece's body: written at once, never waiting for the hasher, so two suffice.
PART_SLOTS = 2


class _Transient(Exception):  # noqa: N818 - internal signal, never leaves this module
    """One attempt failed in a way worth retrying."""

    def __init__(
        self, reason: str, retry_after: float | None = None, *, discard: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.discard = discard
        """The bytes held are not the file's any more (it changed): start over."""


class _RangesRefused(Exception):  # noqa: N818 - internal signal
    """A piece's request was answered with the whole file (200): the server ignores Range."""


class _OneStream(Exception):  # noqa: N818 - internal signal
    """The first piece came fast enough that one stream suffices (`Fetcher.solo_probe`)."""


class _SourceFailed(Exception):  # noqa: N818 - internal signal
    """A blob remote lacks the blob (404) or served other bytes: try the next source."""

    def __init__(self, actual: str | None = None) -> None:
        super().__init__(actual or "missing")
        self.actual = actual
        """The digest the remote's bytes had; None: it has no such object."""


class _Mismatch(Exception):  # noqa: N818 - internal signal
    """The bytes are complete but not the pinned ones."""

    def __init__(self, actual: str) -> None:
        super().__init__(actual)
        self.actual = actual


async def fetch_blob(fetcher: Fetcher, item: FetchItem) -> FetchResult:
    """Make `item` a verified blob in the store; a blob already present costs one stat().

    Another process fetching the same blob is waited for (its result is then found in the
    store); the store lock, `fetcher.admit`, is held only for the rename into `blobs/`."""
    started = time.monotonic()
    blob = fetcher.layout.blob_path(item.sha256)
    lock = await _fetch_lock(fetcher.layout, item, wait=fetcher.wait, wait_s=fetcher.wait_s)
    if lock is None:
        return FetchResult(item, 0, 0, 0, 0.0)
    try:
        partial = claim_partial(fetcher.layout, item.sha256)
        transfer = _Transfer(fetcher, item, partial, StreamHasher())
        try:
            await transfer.resume()
            transfer.tell()
            fetcher.progress.start(item.label, item.size, partial.held)
            received, attempts = await _from_sources(transfer)
            if fetcher.fsync:  # before taking the store lock: this part can take seconds
                await asyncio.to_thread(os.fsync, partial.fd)
            async with fetcher.admit():
                await asyncio.to_thread(partial.finish_into, blob, fsync=fetcher.fsync)
        except BaseException:
            fetcher.progress.finish(item.label, ok=False)
            raise
        finally:
            transfer.close()
    finally:
        release_fetch_lock(fetcher.layout, item.sha256, lock)
    fetcher.progress.finish(item.label, ok=True)
    resumed_from = transfer.reused
    seconds = time.monotonic() - started
    log.info(
        "fetch.done",
        file=item.label,
        bytes=received,
        resumed_from=resumed_from,
        attempts=attempts,
        seconds=round(seconds, 3),
        **({"remote": transfer.remote} if transfer.remote else {}),
    )
    return FetchResult(item, received, resumed_from, attempts, seconds, transfer.remote)


async def _from_sources(transfer: _Transfer) -> tuple[int, int]:
    """Run `transfer` from each blob remote in turn, then from the registry; returns (bytes
    received in this run, attempts at the source that served it: a remote that lacks the blob
    is not a retry)."""
    item, fetcher = transfer.item, transfer.fetcher
    for mirror in item.mirrors:
        if mirror.remote in fetcher.skip:
            continue
        try:
            attempts = await _from_remote(transfer, mirror)
        except _SourceFailed as exc:
            if exc.actual is None:
                log.debug("remote.missing", remote=mirror.remote, file=item.label, blob=item.sha256)
            else:
                log.warning(
                    "remote.corrupt",
                    remote=mirror.remote,
                    file=item.label,
                    blob=item.sha256,
                    actual=exc.actual,
                )
            continue
        except RemoteError as exc:  # AuthError included: a refusal is as good as down here
            if mirror.remote not in fetcher.skip:  # parallel downloads may all have met it
                fetcher.skip.add(mirror.remote)
                fix = REMOTE_REFUSED_FIX if isinstance(exc, AuthError) else REMOTE_DOWN_FIX
                log.warning("remote.unavailable", remote=mirror.remote, reason=exc.message, fix=fix)
            continue
        return transfer.flushed, attempts
    transfer.switch(item.url, None)
    _received, attempts = await transfer.run()
    return transfer.flushed, attempts


async def _from_remote(transfer: _Transfer, mirror: Mirror) -> int:
    """Run `transfer` from one blob remote; returns the attempts. A refusal after the remote
    served bytes of this file means its URL expired meanwhile (temporary credentials can make
    that minutes): signed again once, keeping the bytes."""
    transfer.switch(mirror.sign(), mirror.remote)
    before = transfer.flushed
    try:
        return (await transfer.run())[1]
    except AuthError:
        if transfer.flushed == before:
            raise
    transfer.switch(mirror.sign(), mirror.remote)
    return (await transfer.run())[1]


async def _fetch_lock(
    layout: StoreLayout, item: FetchItem, *, wait: bool, wait_s: float | None = None
) -> int | None:
    """This process's right to fetch `item` (an fd), or None once the blob is in the store;
    BusyError instead of waiting for another run's download unless `wait`, or once it has
    waited `wait_s` seconds."""
    waiting = False
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        present, lock = _blob_or_lock(layout, item.sha256)
        if present or lock is not None:
            return lock
        if not wait:
            raise BusyError(
                f"{layout.fetch_lock_path(item.sha256)}: another run is downloading {item.label}",
                hint="run again when it is done, or without --no-wait to wait for it",
            )
        if deadline is not None and time.monotonic() >= deadline:
            raise BusyError(
                f"{layout.fetch_lock_path(item.sha256)}: another run is still downloading "
                f"{item.label} after {wait_s:g} s (--wait-timeout)",
                hint="run again when it is done, or with a longer --wait-timeout",
            )
        if not waiting:
            log.info("fetch.wait", file=item.label, why="another run is fetching this blob")
            waiting = True
        await asyncio.sleep(FETCH_LOCK_POLL)


def _blob_or_lock(layout: StoreLayout, sha256: str) -> tuple[bool, int | None]:
    """(True, None) when the blob is in the store, (False, fd) when this process may fetch it,
    (False, None) while another fetches it."""
    blob = layout.blob_path(sha256)
    if blob.exists():
        return True, None
    lock = try_fetch_lock(layout, sha256)
    if lock is not None and blob.exists():  # the holder we waited for has just admitted it
        release_fetch_lock(layout, sha256, lock)
        return True, None
    return False, lock


@dataclass(slots=True)
class _Transfer:
    """One file on its way into the store: the claimed partial and the running digest."""

    fetcher: Fetcher
    item: FetchItem
    partial: Partial
    hasher: StreamHasher
    reused: int = 0
    """Bytes of an earlier run's partial still part of the result (0 once they are dropped)."""
    flushed: int = 0
    """Bytes received in this run that reached the partial."""
    sink: BodySink | None = None
    """The body being received, if any."""
    url: str | None = None
    """Where pieces go: the first piece's final URL after redirects (None: resolve again)."""
    ranges_refused: bool = False
    """One stream from now on: the server answered a piece with a 200, or the first piece
    showed one stream is fast enough."""
    hashed_to: int = 0
    """End of the gap-free prefix handed to the hashing thread (parallel parts)."""
    probe: tuple[float, int, asyncio.Event, asyncio.TimerHandle] | None = None
    """While the first piece is probed: its start, `flushed` then, the event that lets the
    other connections start, and the timer that sets it."""
    solo: bool = False
    """The probe found one stream fast enough."""
    remote: str | None = None
    """The blob remote `item.url` points at now; None: the registry."""

    def switch(self, url: str, remote: str | None) -> None:
        """Fetch from another source from here on, keeping the bytes held (they are the same
        blob's); the old source's ETag means nothing to the new one."""
        if (url, remote) == (self.item.url, self.remote) and not self.item.mirrors:
            return
        self.item = dataclasses.replace(self.item, url=url)
        self.remote = remote
        self.url = None
        self.ranges_refused = False
        self.solo = False
        self.partial.set_etag(None)

    def close(self) -> None:
        self.partial.close()
        self.hasher.close()

    async def resume(self) -> None:
        """Re-hash what an earlier run left (never trusted blindly)."""
        partial = self.partial
        sized = partial.spans is not None and os.fstat(partial.fd).st_size != self.item.size
        if partial.size > self.item.size or sized:
            partial.reset()
        if partial.size:
            await self.hasher.hash_prefix(partial.fd, partial.size)
        if partial.held:
            log.info("fetch.resume", file=self.item.label, bytes=partial.held, total=self.item.size)
        self.reused = partial.held

    def discard(self) -> None:
        """Drop the bytes received so far and start over from zero."""
        self.partial.reset()
        self.hasher.reset()
        self.reused = 0
        self.tell()
        self.fetcher.progress.restart(self.item.label)

    def tell(self) -> None:
        """Tell `fetcher.watch` where the gap-free prefix is now."""
        if self.fetcher.watch is not None:
            self.fetcher.watch(self.item, self.partial)

    async def run(self) -> tuple[int, int]:
        """Attempts until the bytes are complete and match; returns (bytes received, attempts)."""
        item = self.item
        attempts = failures = 0
        refetched = False
        if self.partial.size == item.size:  # killed between the last byte and the rename
            try:
                await self.check_digest()
            except _Mismatch as exc:
                log.warning("fetch.partial_mismatch", file=item.label, actual=exc.actual)
                self.discard()
            else:
                return 0, 0
        while True:
            attempts += 1
            try:
                if self.use_parts():
                    await self.run_parts()
                else:
                    await self.attempt()
                await self.check_digest()
            except (_RangesRefused, _OneStream) as exc:
                solo = isinstance(exc, _OneStream)
                self.one_stream(solo=solo)
                attempts -= solo  # going on as one stream is the same attempt, not a retry
                continue
            except _Transient as exc:
                if exc.discard:
                    self.discard()
                failures += 1
                await self.back_off(exc, failures, what="download", have=self.partial.size)
                continue
            except _Mismatch as exc:
                self.discard()  # corrupt bytes are never resumed
                if self.remote is not None:
                    raise _SourceFailed(exc.actual) from None
                if refetched:
                    raise IntegrityError(
                        f"{item.label}: SHA-256 mismatch after a re-fetch: expected {item.sha256}, "
                        f"got {exc.actual} ({item.size} bytes from {redact_url(item.url)})",
                        hint="the registry serves other bytes than the lock pins; "
                        "run `modelsync lock --upgrade-model` if upstream changed on purpose",
                    ) from None
                refetched = True
                log.warning(
                    "fetch.digest_mismatch",
                    file=item.label,
                    expected=item.sha256,
                    actual=exc.actual,
                )
                continue
            return self.flushed, attempts

    async def back_off(
        self, exc: _Transient, failures: int, *, what: str, have: int, kept: str = ""
    ) -> None:
        """After the `failures`th transient failure of `what` (the file or one piece): give up
        past the policy's attempts (exit 5), else log the retry and wait its backoff."""
        item, policy = self.item, self.fetcher.policy
        limit = policy.attempts if self.remote is None else min(policy.attempts, REMOTE_ATTEMPTS)
        if failures >= limit:
            raise RemoteError(
                f"{item.label}: {what} failed after {failures} attempts ({exc.reason}) "
                f"from {redact_url(item.url)}",
                hint=f"the server is unreachable or failing; run the same command later{kept}",
            ) from exc
        delay = policy.delay(failures, retry_after=exc.retry_after, rand=self.fetcher.rand())
        log.warning(
            "fetch.retry",
            file=item.label,
            reason=exc.reason,
            attempt=failures,
            have=have,
            wait=round(delay, 2),
        )
        await self.fetcher.sleep(delay)

    def one_stream(self, *, solo: bool) -> None:
        """Continue on one stream from the gap-free prefix: the first piece showed one is fast
        enough (`solo`: the usual case on a fast link, not news), or the server refused ranges."""
        self.ranges_refused = True
        self.partial.stop_parts()
        if solo:
            log.debug("fetch.one_stream", file=self.item.label, kept=self.partial.size)
        else:
            log.info("fetch.ranges_refused", file=self.item.label, kept=self.partial.size)

    async def check_digest(self) -> None:
        actual = await self.hasher.hexdigest()
        if actual != self.item.sha256:
            raise _Mismatch(actual)

    def moved(self) -> int:
        """Bytes received so far in this run (for the stall check; never read per chunk)."""
        return self.flushed + (self.sink.pending if self.sink is not None else 0)

    async def attempt(self) -> None:
        """One HTTP request continuing from `partial.size`; raises _Transient to be retried,
        also when it moves fewer bytes than the policy's minimum speed over one window."""
        await self.watched(self.request(), self.moved)

    async def watched(self, coro: Awaitable[None], moved: Callable[[], int]) -> None:
        """Run one request; _Transient when it moves too few bytes over a stall window (checked
        by a timer, not per chunk)."""
        policy = self.fetcher.policy
        request = asyncio.ensure_future(coro)
        try:
            mark = moved()
            while not (await asyncio.wait({request}, timeout=policy.stall_window))[0]:
                delta, mark = moved() - mark, moved()
                if policy.stalled(delta):
                    raise _Transient(f"stalled: {delta} bytes in {policy.stall_window:g} s")
            request.result()
        finally:
            if not request.done():
                request.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await request

    async def request(self) -> None:
        partial = self.partial
        headers = self.fetcher.credentials.headers_for(self.item.url)
        if partial.size:
            headers["Range"] = f"bytes={partial.size}-"
            if partial.etag and not partial.etag.startswith("W/"):
                headers["If-Range"] = partial.etag
        with self.network_errors(lambda: partial.size):
            async with self.fetcher.session.get(self.item.url, headers=headers) as response:
                await self.check_status(response)
                await self.stream_body(response)
        if partial.size < self.item.size:
            raise _Transient(f"body ended at {partial.size} of {self.item.size} bytes")

    async def check_status(self, response: aiohttp.ClientResponse) -> None:
        item, partial = self.item, self.partial
        status = response.status
        where = redact_url(str(response.url))
        if status in RETRYABLE_STATUS:
            raise _Transient(f"HTTP {status}", retry_after_seconds(response.headers))
        if status in (401, 403):
            raise AuthError(
                f"{item.label}: HTTP {status} from {where}",
                hint="set the registry's token variable (e.g. HF_TOKEN) to a token with access",
            )
        if status == 404 and self.remote is not None:
            raise _SourceFailed
        if status == 416 and partial.size:
            self.discard()  # our partial does not fit the file any more: start over
            raise _Transient("HTTP 416 for the resumed range")
        if status == 200:
            if self.remote is not None and response.content_length not in (None, item.size):
                # A remote's object of another size is another object (a stray upload), not a
                # remote that is down: this file's source failed, the remote stays in use.
                raise _Mismatch(f"(size {response.content_length} instead of {item.size})")
            if partial.size:
                log.info("fetch.range_ignored", file=item.label, dropped=partial.size)
                await self.hasher.drain()
                self.discard()
        elif status == 206:
            self.check_content_range(response)
        else:
            raise RemoteError(
                f"{item.label}: HTTP {status} from {where}",
                hint="check that the locked commit and path still exist (`modelsync outdated`)",
            )
        etag = response.headers.get("ETag")
        if partial.size and partial.etag and etag and etag != partial.etag:
            self.discard()
            raise _Transient("the file changed on the server (ETag) since the partial was written")
        partial.set_etag(etag)

    def check_content_range(self, response: aiohttp.ClientResponse) -> None:
        """A 206 must start exactly where our bytes end (the official client does not check)."""
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is None or int(match.group(1)) != self.partial.size:
            self.discard()
            raise _Transient("206 with an unexpected Content-Range")
        total = match.group(3)
        if total != "*" and int(total) != self.item.size:
            raise _Mismatch(f"(size {total} instead of {self.item.size})")

    async def stream_body(self, response: aiohttp.ClientResponse) -> None:
        size = self.item.size
        self.sink = sink = BodySink(
            self.partial.write, self.hasher, limit=size - self.partial.size, on_bytes=self.advanced
        )
        try:
            way = await receive(response, sink, read_timeout=self.fetcher.session.timeout.sock_read)
            log.debug("fetch.body", file=self.item.label, way=way, bytes=self.partial.size)
        except BodyTooLong:
            raise _Mismatch(f"(more than the pinned {size} bytes)") from None
        finally:
            self.sink = None
            await sink.settle()  # the partial holds every received byte; the slots are free
            sink.close()

    @contextlib.contextmanager
    def network_errors(self, have: Callable[[], int]) -> Iterator[None]:
        """aiohttp's and the body's failures as _Transient (to retry) or RemoteError."""
        try:
            yield
        except (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, BodyCut) as exc:
            raise _Transient(f"connection dropped at byte {have()}") from exc
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            raise _Transient(f"{type(exc).__name__} at byte {have()}") from exc
        except (aiohttp.TooManyRedirects, aiohttp.RedirectClientError) as exc:
            raise RemoteError(
                f"{self.item.label}: {_redirect_problem(exc)} from {redact_url(self.item.url)}",
                hint="the registry or its CDN is misconfigured; report it, or pin another source",
            ) from exc
        except aiohttp.ClientError as exc:  # a malformed status line or headers, say
            raise _Transient(f"malformed response ({_first_line(exc)})") from exc

    def use_parts(self) -> bool:
        """Parallel pieces: for a partial already in parts, or a file large enough."""
        if self.ranges_refused:
            return False
        fetcher = self.fetcher
        return self.partial.spans is not None or worth_parts(
            self.item.size, connections=fetcher.connections, part_size=fetcher.part_size
        )

    async def run_parts(self) -> None:
        """Fetch every missing byte as pieces over parallel connections. The first piece goes
        alone: its answer resolves the redirect and shows whether the server does ranges."""
        fetcher, partial = self.fetcher, self.partial
        spans = partial.spans
        holes = spans.holes(self.item.size) if spans else [(partial.size, self.item.size)]
        queue = deque(
            Piece(start, end)
            for start, end in plan_pieces(
                holes, connections=fetcher.connections, part_size=fetcher.part_size
            )
        )
        self.hashed_to = partial.size  # the hasher holds exactly the gap-free prefix
        if not queue:
            return
        ready = asyncio.Event()

        async def worker(first: bool) -> None:
            if not first:
                await ready.wait()
            while queue:
                await self.fetch_piece(queue.popleft(), ready)
                if self.solo and queue:  # the first piece showed one stream suffices
                    raise _OneStream

        count = min(max(1, fetcher.connections), len(queue))
        tasks = [asyncio.ensure_future(worker(n == 0)) for n in range(count)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                if (error := task.exception()) is not None:
                    raise error
        finally:
            if self.probe is not None:
                self.probe[3].cancel()
                self.probe = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.hasher.drain()  # no read of the partial may outlive this attempt

    async def fetch_piece(self, piece: Piece, ready: asyncio.Event) -> None:
        """One piece, retried from its own bytes with the policy's backoff."""
        failures = 0
        while piece.pos < piece.end:
            try:
                await self.watched(self.piece_request(piece, ready), piece.moved)
            except _Transient as exc:
                if exc.discard:
                    raise
                failures += 1
                await self.back_off(
                    exc,
                    failures,
                    what=f"bytes {piece.pos}-{piece.end - 1}",
                    have=piece.pos,
                    kept=" (the bytes received are kept)",
                )

    async def piece_request(self, piece: Piece, ready: asyncio.Event) -> None:
        url = self.url or self.item.url
        headers = self.fetcher.credentials.headers_for(url)
        headers["Range"] = f"bytes={piece.pos}-{piece.end - 1}"
        etag = self.partial.etag
        if etag and not etag.startswith("W/"):
            headers["If-Range"] = etag
        with self.network_errors(lambda: piece.pos):
            async with self.fetcher.session.get(url, headers=headers) as response:
                end = self.check_piece_status(response, piece)
                if not ready.is_set() and self.probe is None:
                    self.partial.start_parts(self.item.size)
                    self.partial.set_etag(response.headers.get("ETag"))
                    self.url = str(response.url)
                    self.start_probe(ready)
                await self.stream_piece(response, piece, end)
        if piece.pos < end:
            raise _Transient(f"body ended at byte {piece.pos} of {piece.start}-{end - 1}")

    def check_piece_status(self, response: aiohttp.ClientResponse, piece: Piece) -> int:
        """The end (exclusive) of the bytes this 206 carries, which must start at `piece.pos`
        and stay inside the piece; else the reason to retry, give up or change course."""
        item, status = self.item, response.status
        if status in RETRYABLE_STATUS:
            raise _Transient(f"HTTP {status}", retry_after_seconds(response.headers))
        if status in (401, 403) and origin_of(str(response.url)) != origin_of(item.url):
            self.url = None  # a signed redirect target expired: resolve it again
            raise _Transient(f"HTTP {status} from the redirect target")
        if status in (401, 403):
            raise AuthError(
                f"{item.label}: HTTP {status} from {redact_url(str(response.url))}",
                hint="set the registry's token variable (e.g. HF_TOKEN) to a token with access",
            )
        if status == 404 and self.remote is not None:
            raise _SourceFailed
        if status == 200:
            raise _RangesRefused
        if status == 416:
            raise _Mismatch(f"(HTTP 416: the server's file is shorter than {item.size} bytes)")
        if status != 206:
            raise RemoteError(
                f"{item.label}: HTTP {status} from {redact_url(str(response.url))}",
                hint="check that the locked commit and path still exist (`modelsync outdated`)",
            )
        match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
        if match is not None and match.group(3) not in ("*", str(item.size)):
            raise _Mismatch(f"(size {match.group(3)} instead of {item.size})")
        if match is None or int(match.group(1)) != piece.pos or int(match.group(2)) >= piece.end:
            raise _Transient(
                f"206 with an unexpected Content-Range for bytes {piece.pos}-{piece.end - 1}"
            )
        etag = response.headers.get("ETag")
        if self.partial.etag and etag and etag != self.partial.etag:
            raise _Transient("the file changed on the server (ETag)", discard=True)
        return int(match.group(2)) + 1

    async def stream_piece(self, response: aiohttp.ClientResponse, piece: Piece, end: int) -> None:
        partial = self.partial

        def write(data: memoryview) -> None:
            partial.write_at(data, piece.pos)
            piece.pos += len(data)
            if partial.size > self.hashed_to:  # the gap-free prefix grew: hash it from disk
                self.hasher.submit_span(partial.fd, self.hashed_to, partial.size)
                self.hashed_to = partial.size

        piece.sink = sink = BodySink(
            write, None, limit=end - piece.pos, on_bytes=self.advanced, slots=PART_SLOTS
        )
        try:
            await receive(response, sink, read_timeout=self.fetcher.session.timeout.sock_read)
        except BodyTooLong:
            raise _Transient("a body longer than its Content-Range") from None
        finally:
            piece.sink = None
            sink.close()

    def start_probe(self, ready: asyncio.Event) -> None:
        """The first piece's answer came: let the other connections start now, or, with a
        probe, once it has shown one stream is not enough (`advanced` decides early)."""
        probe = self.fetcher.solo_probe
        if probe is None:
            ready.set()
            return
        timer = asyncio.get_running_loop().call_later(probe[1], ready.set)
        self.probe = (time.monotonic(), self.flushed, ready, timer)

    def advanced(self, n: int) -> None:
        """A slot of `n` bytes reached the partial (about once per MiB)."""
        self.flushed += n
        self.tell()
        self.fetcher.progress.advance(self.item.label, n)
        if self.probe is not None and self.fetcher.solo_probe is not None:
            started, before, ready, timer = self.probe
            enough, within = self.fetcher.solo_probe
            if self.flushed - before >= enough:
                timer.cancel()
                self.probe = None
                if time.monotonic() - started <= within:
                    self.solo = True
                else:
                    ready.set()


def _redirect_problem(exc: aiohttp.ClientError) -> str:
    if isinstance(exc, aiohttp.TooManyRedirects):
        return f"redirect loop ({len(exc.history)} redirects)"
    if isinstance(exc, aiohttp.NonHttpUrlRedirectClientError):
        return f"redirected to a non-HTTP URL ({URL(str(exc)).scheme}:)"
    return "redirected to an invalid URL"


def _first_line(exc: aiohttp.ClientError) -> str:
    """aiohttp's parse errors quote the server's bytes over several lines: keep a short head."""
    text = exc.message if isinstance(exc, aiohttp.ClientResponseError) else str(exc)
    return (text.strip().splitlines() or [type(exc).__name__])[0][:80].rstrip(":")


async def fetch_each(
    fetcher: Fetcher, items: Sequence[FetchItem], *, jobs: int = 4
) -> list[FetchResult | BaseException]:
    """Fetch several files, at most `jobs` at a time; every file is tried, and each outcome
    (a result or the exception) is returned in the order of `items`."""
    semaphore = asyncio.Semaphore(max(1, jobs))

    async def one(item: FetchItem) -> FetchResult:
        async with semaphore:
            return await fetch_blob(fetcher, item)

    return await asyncio.gather(*(one(item) for item in items), return_exceptions=True)
