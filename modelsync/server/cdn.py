"""The second origin: LFS bytes behind signed, expiring URLs, and signed LFS upload URLs.

It never looks at `Authorization` (the client drops it on the way here): the URL's signature is
the only credential. A bad or expired signature is a 403.
"""

from __future__ import annotations

from aiohttp import web

from modelsync import digest
from modelsync.server.context import context
from modelsync.server.hub_errors import ForbiddenError, NotFoundError
from modelsync.server.resolve import CDN_PATH, send_blob


async def cdn_file(request: web.Request) -> web.StreamResponse:
    """`GET`/`HEAD /cdn/{oid}?repo=&commit=&path=&size=&exp=&sig=`."""
    ctx = context(request)
    if not ctx.signature_ok(request):
        raise ForbiddenError("Invalid or expired signature")
    oid = request.match_info["oid"]
    blob = ctx.store.local_blob(oid) if digest.is_sha256(oid) else None
    if blob is None:
        raise NotFoundError("No such object")
    size = blob.stat().st_size
    query = request.query
    headers = {
        "X-Repo-Commit": query.get("commit", ""),
        "X-Linked-Etag": f'"{oid}"',
        "ETag": f'"{oid}"',
        "X-Linked-Size": str(size),
        "Accept-Ranges": "bytes",
    }
    return await send_blob(
        request,
        blob,
        size,
        headers,
        counters=ctx.store.counters,
        repo_id=query.get("repo", ""),
        path=query.get("path", ""),
    )


def add_routes(app: web.Application) -> None:
    """Register the CDN download route."""
    app.router.add_get(CDN_PATH, cdn_file, name="cdn_file")
