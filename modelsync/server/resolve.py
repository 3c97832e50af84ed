"""`HEAD`/`GET /{repo}/resolve/{rev}/{path}`: file bytes by sendfile, or a 302 to the CDN.

Files are looked up in the commit's path → blob table and served from the blob store, never by
joining request text to a filesystem path.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from modelsync.log import get_logger
from modelsync.server import names
from modelsync.server.auth import check_content_access
from modelsync.server.context import HubContext, caller, commit_at, context, repo_id_of
from modelsync.server.counters import Counters
from modelsync.server.hub_errors import BadRequestError, EntryNotFoundError, HubError
from modelsync.server.model import Commit, FileEntry
from modelsync.server.ranges import ByteRange, parse_range
from modelsync.server.source import Pulling

CDN_PATH = "/cdn/{oid}"

log = get_logger(__name__)


def file_headers(commit_id: str, entry: FileEntry) -> dict[str, str]:
    """The headers the client reads from a resolve answer (and the CDN repeats)."""
    etag = f'"{entry.etag}"'
    return {
        "X-Repo-Commit": commit_id,
        "X-Linked-Etag": etag,
        "ETag": etag,
        "X-Linked-Size": str(entry.size),
        "Accept-Ranges": "bytes",
    }


async def send_blob(
    request: web.Request,
    blob: Path,
    size: int,
    headers: Mapping[str, str],
    *,
    counters: Counters,
    repo_id: str,
    path: str,
) -> web.StreamResponse:
    """Answer with a blob's bytes (200, or 206 for one satisfiable range) by sendfile.

    A HEAD gets the headers of the full answer and no body. The body's length is counted as the
    body starts, before the client can have read any of it, so tests see the count as soon as
    their download returns (socket buffers make the bytes a vanishing client got unknowable).
    """
    span, response = await _answer(request, size, headers)
    start, length = (span.start, span.length) if span else (0, size)
    config = context(request).config
    if request.method == "HEAD" or length == 0:
        await response.prepare(request)
        await response.write_eof()
        return response
    with blob.open("rb") as f:
        await response.prepare(request)
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        counters.record_bytes(repo_id, path, length)
        try:
            await _send_file(transport, f, start, length, config.rate_cap)
        except ConnectionError:  # reset, broken pipe, or closed (paced sends)
            # A client that goes away mid-file (a killed sync, a cancelled download) is routine
            # for a file server: an event, not an "Error handling request" traceback.
            log.info("download.client_gone", repo=repo_id, path=path, offset=start)
            return response
        await response.write_eof()
    return response


async def _answer(
    request: web.Request, size: int, headers: Mapping[str, str]
) -> tuple[ByteRange | None, web.StreamResponse]:
    """The span asked for (None: the whole file) and the response for it, not yet prepared."""
    span = None if request.method == "HEAD" else parse_range(request.headers.get("Range"), size)
    config = context(request).config
    if config.first_byte_delay_s:
        await asyncio.sleep(config.first_byte_delay_s)
    response = web.StreamResponse(status=206 if span else 200, headers=headers)
    response.content_type = "application/octet-stream"
    response.content_length = span.length if span else size
    if span:
        response.headers["Content-Range"] = span.content_range
    return span, response


STREAM_READ = 1 << 20
"""Bytes of a growing file read and sent at a time."""


async def send_pulling(
    request: web.Request,
    pulling: Pulling,
    size: int,
    headers: Mapping[str, str],
    *,
    counters: Counters,
    repo_id: str,
    path: str,
) -> web.StreamResponse:
    """Answer with a file still being pulled, sending its bytes as they arrive.

    Headers go out with the first bytes, so a pull that fails before any is an error answer.
    A pull that fails (or starts over) later cuts the connection: the client sees a short
    body and retries; it never gets a complete answer from unverified bytes of the whole file
    (the last byte waits for the verification), and its own lock check judges every byte.
    """
    span, response = await _answer(request, size, headers)
    start, end = (span.start, span.end + 1) if span else (0, size)
    if request.method == "HEAD" or end == start:
        await response.prepare(request)
        await response.write_eof()
        return response
    pos, reader = start, None
    try:
        while pos < end:
            ready = min(pulling.ready(), end)  # HubError: a clean error answer, or a cut
            if ready <= pos:
                await pulling.changed()
                continue
            if reader is None:
                reader = pulling.open()
                await response.prepare(request)
                counters.record_bytes(repo_id, path, end - start)
            data = await _read_arrived(pulling, reader, pos, min(ready - pos, STREAM_READ))
            await response.write(data)
            pos += len(data)
    except ConnectionError:  # the client went away; the pull goes on for the others
        log.info("download.client_gone", repo=repo_id, path=path, offset=pos)
        return response
    except HubError as exc:
        if not response.prepared:
            raise
        # Cut, not ended: a body short of its Content-Length is never taken for the file.
        log.info("serve.stream_cut", file=f"{repo_id}/{path}", offset=pos, reason=exc.message)
        if request.transport is not None:
            request.transport.abort()
        return response
    finally:
        if reader is not None:
            reader.close()
    await response.write_eof()
    return response


async def _read_arrived(pulling: Pulling, reader: BinaryIO, pos: int, n: int) -> bytes:
    """`n` arrived bytes at `pos`; `HubError` if the pull failed while they were read (a pull
    that starts over truncates its partial)."""
    data = await asyncio.to_thread(os.pread, reader.fileno(), n, pos)
    if len(data) < n or pulling.ready() < pos + n:
        raise HubError(502, "the pull ended without these bytes")
    return data


async def _send_file(
    transport: asyncio.Transport, f: BinaryIO, start: int, length: int, rate: int | None
) -> None:
    """sendfile, paced to `rate` bytes per second when set (20 sends a second)."""
    loop = asyncio.get_running_loop()
    if not rate:
        await loop.sendfile(transport, f, start, length)
        return
    step, sent, began = max(rate // 20, 16 << 10), 0, loop.time()
    while sent < length:
        if transport.is_closing():  # the client went away between two sends
            raise ConnectionResetError("the client closed the connection")
        n = min(step, length - sent)
        await loop.sendfile(transport, f, start + sent, n)
        sent += n
        ahead = began + sent / rate - loop.time()
        if ahead > 0:
            await asyncio.sleep(ahead)


def cdn_url(ctx: HubContext, repo_id: str, commit: Commit, entry: FileEntry) -> str:
    """A signed, expiring CDN URL for one LFS file of one commit."""
    assert ctx.cdn_endpoint is not None
    params = {"repo": repo_id, "commit": commit.id, "path": entry.path, "size": str(entry.size)}
    return ctx.signed_url(ctx.cdn_endpoint, CDN_PATH.format(oid=entry.sha256), params)


async def resolve_file(request: web.Request) -> web.StreamResponse:
    """Serve one file of one revision, with the headers `hf_hub_download` needs."""
    ctx = context(request)
    who = caller(request)
    repo = ctx.store.get(repo_id_of(request))
    check_content_access(repo, who)
    path = request.match_info["path"]
    if not names.is_repo_path(path):
        raise BadRequestError(f"Invalid path in repo: {path!r}")
    commit = await commit_at(ctx, repo.repo_id, request.match_info["rev"])
    entry = commit.files.get(path)
    if entry is None:
        raise EntryNotFoundError(path, commit.id)
    headers = file_headers(commit.id, entry)
    if entry.lfs and ctx.cdn_endpoint is not None:
        headers["Location"] = cdn_url(ctx, repo.repo_id, commit, entry)
        return web.Response(status=302, headers=headers)
    blob = await ctx.store.blob(repo.repo_id, commit.id, entry)
    counters, repo_id = ctx.store.counters, repo.repo_id
    if isinstance(blob, Path):
        return await send_blob(
            request, blob, entry.size, headers, counters=counters, repo_id=repo_id, path=path
        )
    return await send_pulling(
        request, blob, entry.size, headers, counters=counters, repo_id=repo_id, path=path
    )


def add_routes(app: web.Application) -> None:
    """Register the resolve route (GET answers HEAD too)."""
    app.router.add_get("/{ns}/{name}/resolve/{rev}/{path:.+}", resolve_file, name="resolve")
