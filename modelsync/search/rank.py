"""Filters and orders for `modelsync search` over `RepoSummary`s (pure; the clock comes in).

Relevance (`--sort relevance`) is a weighted sum of four parts, each in 0..1, minus a penalty:

    0.40 * downloads   log10(1 + downloads) / 7, capped at 1 (10 M downloads is 1)
    0.20 * likes       log10(1 + likes) / 4, capped at 1 (10 k likes is 1)
    0.20 * recency     0.5 ** (days since last modified / 180) (a half-life of six months)
    0.20 * name        1 when the repo's name (without `-GGUF`) is the query, else 0.9 times
                       the share of query words found in the repo id (0 without a query)
    - 0.25 when gated  (a token and an accepted licence stand between the user and the file)

Equal inputs give equal scores; ties go to the repository id, ascending.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from modelsync.registry.listing import RepoSummary
from modelsync.resolve.gguf import catalog
from modelsync.resolve.model import RepoFile

SortKey = Literal["downloads", "likes", "updated", "created", "relevance"]
SORT_KEYS: tuple[SortKey, ...] = ("downloads", "likes", "updated", "created", "relevance")

WEIGHTS = {"downloads": 0.40, "likes": 0.20, "recency": 0.20, "name": 0.20}
GATED_PENALTY = 0.25
HALF_LIFE_DAYS = 180.0
PARAM_TOLERANCE = 0.2
"""`--params 7B` takes 5.6B..8.4B: sizes in names are rounded (Mistral 7B has 7.2 B weights)."""

_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}
_COUNT = re.compile(r"(\d+(?:\.\d+)?)([KMBT])", re.IGNORECASE)
# A size in a repo or file name: `Llama-3.2-1B-Instruct`, `qwen2.5-0.5b`, `8x7B` (not `Q4_K_M`).
_NAME_SIZE = re.compile(r"(?:^|[-_./])(?:(\d+)x)?(\d+(?:\.\d+)?)([BM])(?=$|[-_.])", re.IGNORECASE)
_WORDS = re.compile(r"[a-z0-9.]+")


@dataclass(frozen=True, slots=True)
class ParamRange:
    """A parameter size class (`7B`: 7 B ± 20 %) or an inclusive range (`1B-8B`)."""

    low: int
    high: int
    text: str

    def __contains__(self, count: int) -> bool:
        return self.low <= count <= self.high


@dataclass(frozen=True, slots=True)
class Hit:
    """One repository of the results: its summary, quantizations, parameter count and score."""

    summary: RepoSummary
    quants: tuple[str, ...]
    """Quantization labels of its GGUF variants, best quality first."""
    parameters: int | None
    score: float


def parse_count(text: str) -> int | None:
    """`7B`, `1.5b`, `270M` as a count; None if it is not one."""
    match = _COUNT.fullmatch(text.strip())
    if match is None:
        return None
    return int(float(match.group(1)) * _SCALE[match.group(2).upper()])


def parse_params(text: str) -> ParamRange | None:
    """`7B` (a class) or `1B-8B` (a range); None if neither."""
    low_text, dash, high_text = text.partition("-")
    if dash:
        low, high = parse_count(low_text), parse_count(high_text)
        if low is None or high is None or low > high:
            return None
        return ParamRange(low, high, text)
    count = parse_count(text)
    if count is None:
        return None
    spread = int(count * PARAM_TOLERANCE)
    return ParamRange(count - spread, count + spread, text)


def size_in_name(name: str) -> int | None:
    """The parameter count a name states (`…-7B-…`, `…-0.5b`, `8x7B` as 56B), the last one if
    several."""
    found = _NAME_SIZE.findall(name)
    if not found:
        return None
    experts, number, unit = found[-1]
    return int(int(experts or 1) * float(number) * _SCALE[unit.upper()])


def parameters_of(summary: RepoSummary) -> int | None:
    """From the registry's GGUF summary, else from the repository's name."""
    if summary.parameters is not None:
        return summary.parameters
    return size_in_name(summary.repo.rsplit("/", 1)[-1])


def quants_of(summary: RepoSummary) -> tuple[str, ...]:
    """The labels `lock` would see: the resolver's own catalog of the listed files."""
    variants = catalog(RepoFile(path, 0) for path in summary.files).variants
    return tuple(dict.fromkeys(v.label for v in variants if v.label is not None))


def relevance(summary: RepoSummary, text: str | None, now: float) -> float:
    """The `--sort relevance` score (module docstring), rounded so equal inputs compare equal."""
    downloads = min(1.0, math.log10(1 + summary.downloads) / 7)
    likes = min(1.0, math.log10(1 + summary.likes) / 4)
    age_days = max(0.0, now - summary.last_modified) / 86400 if summary.last_modified else None
    recency = 0.0 if age_days is None else 0.5 ** (age_days / HALF_LIFE_DAYS)
    score = (
        WEIGHTS["downloads"] * downloads
        + WEIGHTS["likes"] * likes
        + WEIGHTS["recency"] * recency
        + WEIGHTS["name"] * name_match(summary.repo, text)
    )
    if summary.gated:
        score -= GATED_PENALTY
    return round(score, 6)


def name_match(repo: str, text: str | None) -> float:
    """1 for the repo's own name (`-GGUF` aside), else 0.9 times the share of query words in
    its id (so a partial match never ties the exact one)."""
    words = _WORDS.findall((text or "").lower())
    if not words:
        return 0.0
    name = repo.rsplit("/", 1)[-1].lower().removesuffix("-gguf")
    if name == (text or "").strip().lower().removesuffix("-gguf"):
        return 1.0
    haystack = repo.lower()
    return sum(1 for w in words if w in haystack) / len(words) * 0.9


def hit_of(summary: RepoSummary, text: str | None, now: float) -> Hit:
    """A summary with what the filters and orders need."""
    return Hit(summary, quants_of(summary), parameters_of(summary), relevance(summary, text, now))


def accepts(hit: Hit, *, quant: str | None, params: ParamRange | None) -> bool:
    """Whether a hit passes `--quant` (a canonical label) and `--params`."""
    if quant is not None and quant not in hit.quants:
        return False
    return params is None or (hit.parameters is not None and hit.parameters in params)


def _key(hit: Hit, sort: SortKey) -> float:
    summary = hit.summary
    return {
        "downloads": summary.downloads,
        "likes": summary.likes,
        "updated": summary.last_modified,
        "created": summary.created_at,
        "relevance": hit.score,
    }[sort]


def ordered(hits: Iterable[Hit], sort: SortKey) -> list[Hit]:
    """Descending on the sort key, ties by repository id ascending."""
    return sorted(hits, key=lambda h: (-_key(h, sort), h.summary.repo))


def top(hits: Sequence[Hit], sort: SortKey, limit: int) -> list[Hit]:
    """The first `limit` hits in order."""
    return ordered(hits, sort)[:limit]
