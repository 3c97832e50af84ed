"""Untrusted JSON from requests: size and depth limits, and big bodies parsed off the event loop.

Bodies read whole are bounded by the app's `client_max_size` (a 413 past it); commit lines by
`upload.MAX_COMMIT_LINE`. Parsing a few MiB takes tens of milliseconds, long enough to stall
every other client, so anything past `INLINE_BYTES` is parsed in a worker thread.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TypeVar

from aiohttp import web

from modelsync.server.hub_errors import BadRequestError

MAX_DEPTH = 64
"""Nesting any Hub request needs is 3 or 4 levels; deeper is an attack on the parser."""
INLINE_BYTES = 64 * 1024
"""Bodies up to this size parse in well under a millisecond: cheaper than a thread hop."""

T = TypeVar("T")


def _too_deep(value: object) -> bool:
    """Whether containers nest deeper than `MAX_DEPTH` (iterative: no recursion to exhaust)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: list[object] = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if level > MAX_DEPTH:
            return True
        stack.extend((child, level + 1) for child in children)
    return False


def loads(data: bytes, *, what: str) -> object:
    """JSON of untrusted bytes; a 400 naming `what` if malformed or nested too deep."""
    try:
        value = json.loads(data)
    except RecursionError as exc:
        raise BadRequestError(f"{what} is nested too deep: at most {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # UnicodeDecodeError included
        raise BadRequestError(f"{what} is not valid JSON") from exc
    if _too_deep(value):
        raise BadRequestError(f"{what} is nested too deep: at most {MAX_DEPTH} levels")
    return value


async def off_loop(parse: Callable[[bytes], T], data: bytes) -> T:
    """`parse(data)`, in a worker thread unless `data` is small enough to parse at once."""
    if len(data) <= INLINE_BYTES:
        return parse(data)
    return await asyncio.to_thread(parse, data)


def _object(data: bytes) -> dict[str, object]:
    body = loads(data, what="The request body")
    if not isinstance(body, dict):
        raise BadRequestError("The request body must be a JSON object")
    return body


async def json_object(request: web.Request) -> dict[str, object]:
    """The request's body as a JSON object, within the size and depth limits; else a 4xx."""
    return await off_loop(_object, await request.read())
