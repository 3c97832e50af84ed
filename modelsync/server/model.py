"""Values of the Hub-compatible server: files, commits, repositories, commit operations.

All immutable; `RepoStore` swaps whole values under its lock, so a reader holding a `Commit` or a
`Repo` always sees one consistent state.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from modelsync.server import gitobj

Gated = Literal[False, "auto", "manual"]


def iso_z(timestamp: float) -> str:
    """A Hub date: `YYYY-MM-DDTHH:MM:SS.000Z` (the client rejects `+00:00`)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(int(timestamp)))


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a commit: where it is, what it holds, and whether git would keep it in LFS."""

    path: str
    size: int
    sha256: str
    git_sha1: str
    """Git blob id of the content itself (what git stores for a regular file)."""
    lfs: bool

    @property
    def pointer(self) -> bytes:
        """The LFS pointer text git would store for this content."""
        return gitobj.lfs_pointer(self.sha256, self.size)

    @property
    def blob_id(self) -> str:
        """The git blob id in the tree: of the pointer for LFS files, of the content otherwise."""
        return gitobj.git_blob_oid(self.pointer) if self.lfs else self.git_sha1

    @property
    def etag(self) -> str:
        """What the resolve endpoint sends as ETag: SHA-256 for LFS files, git blob id otherwise."""
        return self.sha256 if self.lfs else self.git_sha1

    def same_content(self, other: FileEntry) -> bool:
        """Whether two entries hold the same bytes stored the same way."""
        return (self.sha256, self.size, self.lfs) == (other.sha256, other.size, other.lfs)


@dataclass(frozen=True, slots=True)
class Commit:
    """One commit: its id, its parent and the full path → file table of its tree."""

    id: str
    parent: str | None
    title: str
    message: str
    author: str
    date: int
    """Seconds since the epoch, UTC."""
    files: Mapping[str, FileEntry]

    @staticmethod
    def build(
        *,
        repo_id: str,
        parent: str | None,
        title: str,
        message: str,
        author: str,
        date: int,
        files: Mapping[str, FileEntry],
    ) -> Commit:
        """A commit whose id is derived from its content (see `gitobj.commit_id`)."""
        ordered = {path: files[path] for path in sorted(files)}
        commit_id = gitobj.commit_id(
            repo_id=repo_id,
            parent=parent,
            files=[(e.path, e.sha256, e.size, e.lfs) for e in ordered.values()],
            title=title,
            message=message,
        )
        return Commit(
            id=commit_id,
            parent=parent,
            title=title,
            message=message,
            author=author,
            date=date,
            files=MappingProxyType(ordered),
        )

    def same_tree(self, files: Mapping[str, FileEntry]) -> bool:
        """Whether `files` is exactly this commit's tree (same paths, same bytes, same storage)."""
        if files.keys() != self.files.keys():
            return False
        return all(entry.same_content(self.files[path]) for path, entry in files.items())


@dataclass(frozen=True, slots=True)
class RepoSettings:
    """What an operator sets on a repository besides its files."""

    private: bool = False
    gated: Gated = False
    downloads: int = 0
    likes: int = 0
    tags: tuple[str, ...] = ()
    approved_users: tuple[str, ...] = ()
    """Users granted access to a `gated="manual"` repository (besides its owners)."""


@dataclass(frozen=True, slots=True)
class Repo:
    """One model repository: its settings and refs. Commits live in the store, by id."""

    repo_id: str
    created_at: int
    settings: RepoSettings = field(default_factory=RepoSettings)
    branches: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def namespace(self) -> str:
        """The user or organisation owning the repository."""
        return self.repo_id.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class AddBytes:
    """Commit operation: write these bytes at `path`."""

    path: str
    data: bytes


@dataclass(frozen=True, slots=True)
class AddBlob:
    """Commit operation: place a blob already in the store (by SHA-256) at `path`.

    `lfs=None` lets the LFS rule decide from the path, size and first bytes; `size`, when given,
    must be the stored blob's size.
    """

    path: str
    sha256: str
    lfs: bool | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class DeletePath:
    """Commit operation: remove one file."""

    path: str


@dataclass(frozen=True, slots=True)
class DeleteFolder:
    """Commit operation: remove every file under a folder."""

    path: str


Operation = AddBytes | AddBlob | DeletePath | DeleteFolder


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the server's in-memory event log (commits, no-op commits, uploads)."""

    name: str
    repo_id: str
    detail: Mapping[str, str | int] = field(default_factory=lambda: MappingProxyType({}))
