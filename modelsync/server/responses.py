"""JSON answers, and the middleware that turns errors into Hub-style answers and counts requests."""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

from modelsync.log import get_logger
from modelsync.server.auth import identify
from modelsync.server.context import CONTEXT
from modelsync.server.hub_errors import ForbiddenError, HubError, UnauthorizedError

log = get_logger(__name__)


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def json_answer(
    data: object,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    """A compact JSON answer."""
    return web.Response(
        text=_dumps(data), status=status, headers=headers, content_type=content_type
    )


def _header_safe(text: str) -> str:
    """One printable ASCII line, as a header value must be."""
    flat = " ".join(text.split())
    return "".join(ch if 0x20 <= ord(ch) < 0x7F else "?" for ch in flat)[:500]


def error_answer(error: HubError) -> web.Response:
    """`{"error": ...}` with `X-Error-Code` (when known) and `X-Error-Message`."""
    headers = {"X-Error-Message": _header_safe(error.message), **error.headers}
    if error.code:
        headers["X-Error-Code"] = error.code
    return json_answer({"error": error.message, **error.body}, status=error.status, headers=headers)


def _route_name(request: web.Request) -> str:
    name = request.match_info.route.name
    return name or "unrouted"


READ_ROUTES_BY_POST = frozenset({"paths_info", "validate_yaml"})
"""POST routes that change nothing (a read-only server still answers them)."""


def _check_access(request: web.Request, route: str) -> None:
    """A private mirror answers nobody without a token (a bad one is a 401 everywhere); a
    read-only one (`serve --lock`) refuses every writing route before it runs."""
    config = request.app[CONTEXT].config
    if (
        config.require_token
        and identify(request.headers.get("Authorization"), config.tokens) is None
    ):
        raise UnauthorizedError("This server needs a token: send Authorization: Bearer <token>")
    if (
        config.source is not None
        and request.method not in ("GET", "HEAD")
        and route not in READ_ROUTES_BY_POST
    ):
        raise ForbiddenError("This server is a read-only mirror of locked repositories")


@web.middleware
async def hub_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count the request, log it (path only: query strings may be signed), map errors to JSON."""
    route = _route_name(request)
    ctx = request.app[CONTEXT]
    ctx.store.counters.record_request(route, request.method, request.headers.keys())
    try:
        _check_access(request, route)
        if ctx.watch is not None:
            await ctx.watch.fresh()
        response = await handler(request)
    except HubError as error:
        response = error_answer(error)
    except web.HTTPException as exc:  # aiohttp's own: unknown route, wrong method, body too large
        if exc.status < 400:
            raise
        allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        response = error_answer(HubError(exc.status, exc.reason, headers=allow))
    except ConnectionError:  # the client went away mid-answer: nothing left to send
        raise
    except Exception:  # any bug: a JSON 500 and a logged traceback, never a hung connection
        log.exception("request.failed", method=request.method, route=route, path=request.path)
        response = error_answer(HubError(500, "Internal server error"))
    log.debug(
        "server.request",
        method=request.method,
        route=route,
        path=request.path,
        status=response.status,
    )
    return response
