"""`HEAD`/`GET /{repo}/resolve/{rev}/{path}`: file bytes by sendfile, or a 302 to the CDN.

Files are looked up in the commit's path → blob table and served from the blob store, never by
joining request text to a filesystem path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from aiohttp import web

from modelsync.log import get_logger
from modelsync.server import names
from modelsync.server.auth import check_content_access
from modelsync.server.context import HubContext, caller, commit_at, context, repo_id_of
from modelsync.server.counters import Counters
from modelsync.server.hub_errors import BadRequestError, EntryNotFoundError
from modelsync.server.model import Commit, FileEntry
from modelsync.server.ranges import parse_range

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
    span = None if request.method == "HEAD" else parse_range(request.headers.get("Range"), size)
    config = context(request).config
    if config.first_byte_delay_s:
        await asyncio.sleep(config.first_byte_delay_s)
    start, length = (span.start, span.length) if span else (0, size)
    response = web.StreamResponse(status=206 if span else 200, headers=headers)
    response.content_type = "application/octet-stream"
    response.content_length = length
    if span:
        response.headers["Content-Range"] = span.content_range
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
    return await send_blob(
        request,
        blob,
        entry.size,
        headers,
        counters=ctx.store.counters,
        repo_id=repo.repo_id,
        path=entry.path,
    )


def add_routes(app: web.Application) -> None:
    """Register the resolve route (GET answers HEAD too)."""
    app.router.add_get("/{ns}/{name}/resolve/{rev}/{path:.+}", resolve_file, name="resolve")
