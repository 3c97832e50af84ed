"""What every handler shares (store, config, keys, endpoints) and the request helpers around it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from aiohttp import web
from yarl import URL

from modelsync.log import get_logger
from modelsync.server import names, signing
from modelsync.server.auth import TokenInfo, check_visible, identify
from modelsync.server.config import ServerConfig
from modelsync.server.hub_errors import ForbiddenError, RepoNotFoundError
from modelsync.server.model import Commit, Repo
from modelsync.server.repometa import RepoMeta
from modelsync.server.repos import RepoStore
from modelsync.server.source import Repos


@dataclass
class Watch:
    """Picks up what changed at the source (`--root`'s folders, `--lock`'s files) at most once
    per `ttl` seconds, when a request asks; requests arriving during a look wait for it."""

    store: Repos
    ttl: float
    last: float = float("-inf")
    looking: asyncio.Task[None] | None = None

    async def fresh(self) -> None:
        """Return once the folders were looked at within the last `ttl` seconds."""
        if self.looking is None:
            now = time.monotonic()
            if now - self.last < self.ttl:
                return
            self.last = now
            self.looking = asyncio.create_task(asyncio.to_thread(self._look))
        task = self.looking
        try:
            await asyncio.shield(task)
        finally:
            if task.done() and self.looking is task:
                self.looking = None

    def _look(self) -> None:
        try:
            self.store.refresh()
        except Exception:  # a folder that cannot be read must not fail every request
            log.warning("serve.rescan_failed", exc_info=True)


@dataclass(frozen=True)
class HubContext:
    """The server's shared state, reachable from every request as `request.app[CONTEXT]`."""

    config: ServerConfig
    store: Repos
    """Where repositories come from: a `RepoStore` (`--root`) or `LockedRepos` (`--lock`)."""
    meta: RepoMeta
    endpoint: str
    """Absolute base URL of the Hub API (no trailing slash)."""
    cdn_endpoint: str | None
    signing_key: bytes = field(repr=False)
    clock: Callable[[], float] = time.time
    watch: Watch | None = None
    """Picks up folders or locks added or changed while running."""

    @property
    def writable(self) -> RepoStore:
        """The store writing routes change; a 403 on a read-only mirror (`serve --lock`)."""
        if not isinstance(self.store, RepoStore):
            raise ForbiddenError("This server is a read-only mirror of locked repositories")
        return self.store

    def signed_url(self, base: str, path: str, params: Mapping[str, str]) -> str:
        """An absolute URL on `base` that authorises itself until the configured TTL runs out."""
        expires = int(self.clock()) + self.config.signed_url_ttl_s
        query = signing.sign(self.signing_key, path, params, expires=expires)
        return f"{base}{path}?{urlencode(query, quote_via=quote)}"

    def signature_ok(self, request: web.Request) -> bool:
        """Whether the request's query signs its path and has not expired."""
        return signing.verify(self.signing_key, request.path, request.query, now=self.clock())


log = get_logger(__name__)

CONTEXT = web.AppKey("modelsync_hub_context", HubContext)


def context(request: web.Request) -> HubContext:
    """The shared state of the app serving this request."""
    return request.app[CONTEXT]


def caller(request: web.Request) -> TokenInfo | None:
    """Who sent the request (`None` if anonymous); a bad token answers 401 at once."""
    return identify(request.headers.get("Authorization"), context(request).config.tokens)


def repo_id_of(request: web.Request) -> str:
    """The `{ns}/{name}` of the URL; an impossible id is a repository that does not exist."""
    repo_id = f"{request.match_info['ns']}/{request.match_info['name']}"
    if not names.is_repo_id(repo_id):
        raise RepoNotFoundError(repo_id)
    return repo_id


def visible_repo(request: web.Request) -> tuple[Repo, TokenInfo | None]:
    """The URL's repository, if the caller may see it, and the caller."""
    who = caller(request)
    repo = context(request).store.get(repo_id_of(request))
    check_visible(repo, who)
    return repo, who


async def commit_at(ctx: HubContext, repo_id: str, revision: str) -> Commit:
    """The commit a revision names, made exact first (a mirror may read small files)."""
    await ctx.store.prepare(repo_id, revision)
    return ctx.store.head(repo_id, revision)


def absolute(request: web.Request, **query: str) -> str:
    """This request's URL on the public endpoint, with some query parameters replaced."""
    pairs = [(k, v) for k, v in request.rel_url.query.items() if k not in query]
    pairs.extend(query.items())
    base = URL(context(request).endpoint)
    url = base.with_path(base.path.rstrip("/") + request.rel_url.raw_path, encoded=True)
    return str(url.with_query(pairs))


def next_link(request: web.Request, cursor: int | None) -> dict[str, str]:
    """The `Link: <absolute URL>; rel="next"` header of a page, or no header on the last one."""
    if cursor is None:
        return {}
    return {"Link": f'<{absolute(request, cursor=str(cursor))}>; rel="next"'}
