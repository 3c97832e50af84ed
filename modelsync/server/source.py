"""What the read routes need from wherever repositories come from (one seam, two sides).

`RepoStore` (folders under `--root`, uploads) and `LockedRepos` (`serve --lock`: locked commits
answered from a blob store) both give it. Writing routes need a `RepoStore` and ask for it
with `HubContext.writable`, which a lock-mode server refuses with a 403.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Protocol

from modelsync.server.counters import Counters
from modelsync.server.model import Commit, FileEntry, Repo

DEFAULT_BRANCH = "main"


class Pulling(Protocol):
    """A file on its way in from upstream (`serve --pull-through`), sent as its bytes arrive."""

    def ready(self) -> int:
        """Bytes from offset 0 that may be sent now: the gap-free prefix received, short of the
        last byte until the whole file verified; raises `HubError` once the pull failed or
        started over (bytes sent before may be wrong: the response must be cut)."""
        ...

    async def changed(self) -> None:
        """Wait until `ready` may have moved."""
        ...

    def open(self) -> BinaryIO:
        """A reader of the file's bytes (call once `ready` is above zero; close it after)."""
        ...


class Repos(Protocol):
    """Repositories, their commits and where each file's bytes are, for reading."""

    counters: Counters

    def refresh(self) -> object:
        """Pick up what changed where the repositories come from (folders, lock files); cheap
        when nothing did. Runs off the event loop."""
        ...

    def repo_ids(self) -> list[str]:
        """Every repository id, sorted."""
        ...

    def get(self, repo_id: str) -> Repo:
        """The repository; `RepoNotFoundError` if missing."""
        ...

    def head(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> Commit:
        """The commit a branch, tag or commit id names; `RevisionNotFoundError` if none."""
        ...

    def list_commits(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> list[Commit]:
        """The history of a revision, newest first."""
        ...

    def used_storage(self, repo_id: str) -> int:
        """Bytes of the distinct blobs the repository's commits reference."""
        ...

    def local_blob(self, sha256: str) -> Path | None:
        """The file holding these bytes if it is here now (no fetching), else None."""
        ...

    async def prepare(self, repo_id: str, revision: str) -> None:
        """Make what `head` describes exact before a request reads it (may fetch small files)."""
        ...

    async def blob(self, repo_id: str, commit: str, entry: FileEntry) -> Path | Pulling:
        """The file holding `entry`'s bytes, or the pull bringing them where the source can
        fetch; else a 404."""
        ...
