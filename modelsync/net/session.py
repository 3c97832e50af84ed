"""The one place that builds HTTP sessions: timeouts, connection limits, user agent, credentials.

Credentials are bound to an origin (scheme, host, port). A request carries `Authorization` only
when its URL has that origin, and aiohttp drops the header when a redirect changes origin, so a
token never reaches a CDN or any other host (tested against a second port).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from modelsync import __version__

# Chunk size of reads from the socket: 1 MiB beat 4 MiB on these machines (notes/baselines.md).
READ_CHUNK = 1 << 20
USER_AGENT = f"modelsync/{__version__} aiohttp/{aiohttp.__version__}"


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect and per-read timeouts; no total, since a 40 GB file may take an hour."""

    connect: float = 15.0
    read: float = 60.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """Bearer tokens by origin, e.g. {"https://huggingface.co": "<token>"}; never logged."""

    by_origin: Mapping[str, str] = field(default_factory=dict)

    def headers_for(self, url: str) -> dict[str, str]:
        """`Authorization` for a URL of a credentialed origin, else nothing."""
        target = origin_of(url)
        for origin, token in self.by_origin.items():
            if token and origin_of(origin) == target:
                return {"Authorization": f"Bearer {token}"}
        return {}

    def __repr__(self) -> str:
        return f"Credentials(origins={sorted(self.by_origin)})"


def origin_of(url: str) -> str:
    """`scheme://host:port` with the default port made explicit, for exact comparison."""
    parsed = URL(url)
    return f"{parsed.scheme}://{(parsed.host or '').lower()}:{parsed.port}"


async def _proxy_from_env(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """Send the request (each redirect hop too) through the proxy HTTP(S)_PROXY / NO_PROXY name
    for its URL, as `trust_env` would. `trust_env` stays off because it also sends ~/.netrc
    logins: its `default` one to any host a project names, one over plain http, and next to
    our Bearer token aiohttp refuses the request outright (a Hub user's netrc broke every gated
    download). Tokens come only from credentials.py's rule."""
    if request.proxy is None:
        with contextlib.suppress(LookupError):
            proxy, proxy_auth = get_env_proxy_for_url(request.url)
            request.update_proxy(proxy, proxy_auth, None)
    return await handler(request)


def create_session(
    *, connections: int = 16, timeouts: Timeouts | None = None
) -> aiohttp.ClientSession:
    """A ClientSession set up for downloads and API calls.

    `auto_decompress=False` together with `Accept-Encoding: identity` keeps sizes and Range
    offsets true (the Hub gzips text files otherwise, notes/hub-protocol.md section 8).
    """
    limits = timeouts or Timeouts()
    connector = aiohttp.TCPConnector(limit=connections, limit_per_host=connections)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=limits.connect, sock_read=limits.read
        ),
        auto_decompress=False,
        read_bufsize=READ_CHUNK,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        middlewares=(_proxy_from_env,),
    )
