"""The one seam every registry implements, like httpx's `BaseTransport`: `lock` and `hw` talk to
Hugging Face, plain URLs (and next Ollama) only through it.

A file is addressed by `(source, commit, path)`: for a Hub, the repository, a commit of it and a
path in it; for a plain URL, the URL itself, `""` (URLs have no commits) and its file name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from modelsync.registry.listing import RepoSummary, SearchQuery
from modelsync.registry.model import RemoteFile, RepoSnapshot


class Registry(Protocol):
    """Resolve a source to a commit and its files, read byte ranges, name a file's URL."""

    @property
    def name(self) -> str:
        """The registry's name in models.toml (`hf`, `url`, a declared one)."""
        ...

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included (`lock` reports it)."""
        ...

    async def snapshot(self, source: str, revision: str) -> RepoSnapshot:
        """`source` at `revision`: the commit and every file with its size (and SHA-256 where
        the listing has one)."""
        ...

    async def read_range(self, source: str, commit: str, path: str, start: int, end: int) -> bytes:
        """Bytes `start..end` (inclusive) of a file; shorter only at the end of the file."""
        ...

    async def hash_file(self, source: str, commit: str, file: RemoteFile) -> str:
        """SHA-256 of a small file the listing gives no digest for (fetched once)."""
        ...

    def url_for(self, source: str, commit: str, path: str) -> str:
        """The download URL of a file."""
        ...


class Searchable(Protocol):
    """A registry that can search for repositories (`modelsync search`)."""

    def search(self, query: SearchQuery) -> AsyncIterator[RepoSummary]:
        """Repositories matching `query` in the registry's order, page by page as consumed
        (the caller stops when it has enough)."""
        ...
