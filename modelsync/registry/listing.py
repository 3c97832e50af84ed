"""What a registry's search answers: a query and one summary per repository (pure values)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RegistrySort = Literal["downloads", "likes", "updated", "created"]


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """What the registry filters and sorts on itself; the rest is filtered by the caller."""

    text: str | None = None
    author: str | None = None
    sort: RegistrySort = "downloads"
    include_gated: bool = False
    page_size: int = 100


@dataclass(frozen=True, slots=True)
class RepoSummary:
    """One repository as a listing describes it (dates in seconds since the epoch, 0 unknown)."""

    repo: str
    downloads: int = 0
    likes: int = 0
    created_at: int = 0
    last_modified: int = 0
    gated: bool = False
    files: tuple[str, ...] = ()
    """Paths at the listed head (no sizes: a listing carries none)."""
    parameters: int | None = None
    """The parameter count from the registry's GGUF summary, if it sends one."""
