"""`GET /api/models` query: parsing, filtering, sorting and pages; pure functions over rows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from multidict import MultiMapping

from modelsync.server import names
from modelsync.server.hub_errors import BadRequestError

MAX_PAGE_SIZE = 1000

_SORT_ALIASES = {
    "downloads": "downloads",
    "likes": "likes",
    "createdAt": "createdAt",
    "created_at": "createdAt",
    "lastModified": "lastModified",
    "last_modified": "lastModified",
    "trendingScore": "trendingScore",
    "trending_score": "trendingScore",
}
_PARAM_COUNT = re.compile(r"([0-9]{1,15}(?:\.[0-9]{1,15})?)([KMBT]?)", re.IGNORECASE)
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


@dataclass(frozen=True, slots=True)
class ModelRow:
    """What listing needs to know of one visible repository."""

    repo_id: str
    downloads: int
    likes: int
    created_at: int
    last_modified: int
    tags: frozenset[str]
    gated: bool
    parameters: int | None
    pipeline_tag: str | None

    def sort_value(self, key: str) -> int:
        """The value sorted on for a (normalised) sort key; trendingScore is likes here."""
        return {
            "downloads": self.downloads,
            "likes": self.likes,
            "createdAt": self.created_at,
            "lastModified": self.last_modified,
        }.get(key, self.likes)


@dataclass(frozen=True, slots=True)
class ModelQuery:
    """A parsed `GET /api/models` query."""

    search: str | None = None
    author: str | None = None
    filters: tuple[str, ...] = ()
    sort: str = "trendingScore"
    limit: int | None = None
    gated: bool | None = None
    min_parameters: int | None = None
    max_parameters: int | None = None
    pipeline_tag: str | None = None
    full: bool = False
    card_data: bool = False
    expand: tuple[str, ...] = ()
    offset: int = 0


def parse_bool(value: str | None, *, name: str) -> bool | None:
    """A query boolean (`true`/`false`/`1`/`0`), `None` when absent."""
    if value is None:
        return None
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise BadRequestError(f"Invalid value for '{name}': expected true or false")


def parse_param_count(text: str) -> int:
    """A parameter count such as `6B`, `1.5b`, `270M` or `1000`."""
    match = _PARAM_COUNT.fullmatch(text.strip())
    if match is None:
        raise BadRequestError(
            f"Invalid parameter count '{text[:20]}': expected e.g. 270M, 6B or 1000"
        )
    number, unit = match.groups()
    return int(float(number) * _SCALE[unit.upper()])


def parse_num_parameters(text: str) -> tuple[int | None, int | None]:
    """`min:6B,max:128B` (either bound optional) as `(min, max)`."""
    bounds: dict[str, int] = {}
    for part in text.split(","):
        key, sep, value = part.partition(":")
        if not sep or key.strip() not in ("min", "max"):
            raise BadRequestError(f"Invalid num_parameters '{text}': expected min:6B,max:128B")
        bounds[key.strip()] = parse_param_count(value)
    return bounds.get("min"), bounds.get("max")


def parse_cursor(value: str | None) -> int:
    """The offset an opaque `cursor` stands for (0 when absent)."""
    if value is None:
        return 0
    offset = names.small_number(value)
    if offset is None:
        raise BadRequestError("Invalid cursor")
    return offset


def parse_limit(value: str | None) -> int | None:
    """A positive `limit`, `None` when absent."""
    if value is None:
        return None
    limit = names.small_number(value)
    if not limit:
        raise BadRequestError(f"Invalid limit '{value[:20]}': expected a positive integer")
    return limit


def expand_values(query: MultiMapping[str]) -> tuple[str, ...]:
    """Repeated `expand` (and `expand[]`) values, also split on commas, in order, deduplicated."""
    values = [*query.getall("expand", []), *query.getall("expand[]", [])]
    split = (part.strip() for value in values for part in value.split(","))
    return tuple(dict.fromkeys(part for part in split if part))


def parse_model_query(query: MultiMapping[str]) -> ModelQuery:
    """A `ModelQuery` from the request's query string; unknown parameters are ignored."""
    sort = query.get("sort")
    if sort is not None and sort not in _SORT_ALIASES:
        raise BadRequestError(
            f"Invalid sort '{sort}': expected one of {', '.join(sorted(_SORT_ALIASES))}"
        )
    minimum, maximum = (
        parse_num_parameters(query["num_parameters"]) if "num_parameters" in query else (None, None)
    )
    return ModelQuery(
        search=query.get("search") or None,
        author=query.get("author") or None,
        filters=tuple(f for value in query.getall("filter", []) for f in value.split(",") if f),
        sort=_SORT_ALIASES[sort] if sort else "trendingScore",
        limit=parse_limit(query.get("limit")),
        gated=parse_bool(query.get("gated"), name="gated"),
        min_parameters=minimum,
        max_parameters=maximum,
        pipeline_tag=query.get("pipeline_tag") or None,
        full=bool(parse_bool(query.get("full"), name="full")),
        card_data=bool(parse_bool(query.get("cardData"), name="cardData")),
        expand=expand_values(query),
        offset=parse_cursor(query.get("cursor")),
    )


def _matches(row: ModelRow, query: ModelQuery) -> bool:
    if query.search and query.search.lower() not in row.repo_id.lower():
        return False
    if query.author and row.repo_id.split("/", 1)[0].lower() != query.author.lower():
        return False
    if any(tag not in row.tags for tag in query.filters):
        return False
    if query.gated is not None and row.gated != query.gated:
        return False
    if query.pipeline_tag and row.pipeline_tag != query.pipeline_tag:
        return False
    if query.min_parameters is not None or query.max_parameters is not None:
        if row.parameters is None:
            return False
        if query.min_parameters is not None and row.parameters < query.min_parameters:
            return False
        if query.max_parameters is not None and row.parameters > query.max_parameters:
            return False
    return True


def select_models(rows: Sequence[ModelRow], query: ModelQuery) -> list[ModelRow]:
    """Rows matching the query, sorted descending on its key, ties broken by id ascending."""
    matching = [row for row in rows if _matches(row, query)]
    return sorted(matching, key=lambda row: (-row.sort_value(query.sort), row.repo_id))


def page_size(limit: int | None, configured: int) -> int:
    """Items per page: the configured size, lowered to `limit` when the caller wants fewer."""
    size = min(configured, MAX_PAGE_SIZE)
    return min(size, limit) if limit else size


def next_offset(total: int, offset: int, size: int) -> int | None:
    """The offset of the following page, `None` on the last page."""
    return offset + size if offset + size < total else None
