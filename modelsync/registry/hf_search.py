"""`GET /api/models` of a Hub-compatible registry as `RepoSummary`s (the `Searchable` side).

The query asks for GGUF repositories (`filter=gguf`) with exactly the fields a search needs
(`expand[]=...`: counts, dates, gated, siblings, gguf), then follows the absolute
`Link: <...>; rel="next"` pages (notes/hub-protocol.md, list_models) only as far as the caller
consumes them. Retries (429 with Retry-After, 5xx) are `registry.http`'s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pydantic

from modelsync.errors import AuthError, RemoteError
from modelsync.log import redact_url
from modelsync.registry.errors import RegistryProtocolError
from modelsync.registry.hf import HubRegistry, next_link
from modelsync.registry.http import Answer
from modelsync.registry.listing import RegistrySort, RepoSummary, SearchQuery

MAX_SEARCH_PAGES = 50
_SORT: dict[RegistrySort, str] = {
    "downloads": "downloads",
    "likes": "likes",
    "updated": "lastModified",
    "created": "createdAt",
}
_EXPAND = ("downloads", "likes", "createdAt", "lastModified", "gated", "siblings", "gguf")


class _Sibling(pydantic.BaseModel):
    rfilename: str


class _Item(pydantic.BaseModel):
    id: str
    downloads: int = 0
    likes: int = 0
    createdAt: str | None = None  # noqa: N815 - the Hub's field name
    lastModified: str | None = None  # noqa: N815 - the Hub's field name
    gated: bool | str = False
    siblings: list[_Sibling] | None = None
    gguf: dict[str, Any] | None = None


_PAGE = pydantic.TypeAdapter(list[_Item])


@dataclass(frozen=True, slots=True)
class HubSearch:
    """Search on one Hub-compatible registry (a `registry.base.Searchable`)."""

    hub: HubRegistry

    def first_url(self, query: SearchQuery) -> str:
        """The first page's URL: repeated `expand[]`, so no mapping of parameters will do."""
        params: list[tuple[str, str]] = [("filter", "gguf")]
        if query.text:
            params.append(("search", query.text))
        if query.author:
            params.append(("author", query.author))
        params += [("sort", _SORT[query.sort]), ("direction", "-1")]
        params.append(("limit", str(query.page_size)))
        if not query.include_gated:
            params.append(("gated", "false"))
        params += [("expand[]", field) for field in _EXPAND]
        return f"{self.hub.endpoint}/api/models?{urlencode(params)}"

    async def search(self, query: SearchQuery) -> AsyncIterator[RepoSummary]:
        """Matching repositories in the registry's order, one page requested at a time."""
        url: str | None = self.first_url(query)
        for _ in range(MAX_SEARCH_PAGES):
            if url is None:
                return
            answer = await self.hub.http.request("GET", url)
            self._check(answer)
            for item in self._parse(answer):
                if query.include_gated or item.gated in (False, "false", ""):
                    yield _summary(item)
            url = next_link(answer.headers.get("Link", ""))

    def _check(self, answer: Answer) -> None:
        if answer.status == 200:
            return
        where = f"{self.hub.endpoint} ({self.hub.name})"
        url = redact_url(answer.url)
        if answer.status in (401, 403):
            token = self.hub.token_env or "the registry's token variable"
            raise AuthError(
                f"{where} refused the search {url} ({answer.status})",
                hint=f"check {token}",
            )
        raise RemoteError(
            f"{where} answered {answer.status} for {url} after {answer.attempts} "
            f"attempt{'s' if answer.attempts > 1 else ''}",
            hint="the registry is unavailable or does not search; safe to retry later",
        )

    def _parse(self, answer: Answer) -> list[_Item]:
        try:
            return _PAGE.validate_json(answer.body)
        except pydantic.ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the body"
            raise RegistryProtocolError(
                f"{self.hub.name} ({self.hub.endpoint}) answered {redact_url(answer.url)} with "
                f"an invalid model list: {where}: {first['msg']}",
                hint="the endpoint is not a working Hub-compatible registry",
            ) from None


def _summary(item: _Item) -> RepoSummary:
    total = (item.gguf or {}).get("total")
    return RepoSummary(
        repo=item.id,
        downloads=item.downloads,
        likes=item.likes,
        created_at=_epoch(item.createdAt),
        last_modified=_epoch(item.lastModified),
        gated=item.gated not in (False, "false", ""),
        files=tuple(s.rfilename for s in item.siblings or ()),
        parameters=total if isinstance(total, int) and not isinstance(total, bool) else None,
    )


def _epoch(text: str | None) -> int:
    """Seconds of an ISO 8601 date such as `2024-05-01T12:00:00.000Z`; 0 when absent or bad."""
    if not text:
        return 0
    try:
        return int(datetime.fromisoformat(text).timestamp())
    except ValueError:
        return 0
