"""Local files versus the remote repository's listing → an `UploadPlan` (pure).

A remote LFS file is compared by its SHA-256 (the listing carries it); a regular (non-LFS)
file by its git blob id, which the caller computes only for the local files that meet one (they
are small: the card, a config). `.gitattributes` is the Hub's own and never deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

KEEP = frozenset({".gitattributes"})
"""Files a repository keeps even with `delete-extra`: the Hub writes them itself."""


def git_blob_id(data: bytes) -> str:
    """The git blob SHA-1 of `data`: how a listing names a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file to publish: its path in the repo, size, SHA-256, and where its bytes are."""

    path: str
    size: int
    sha256: str
    source: Path | None = None
    """The file on disk; None when the bytes are `content` (the generated card)."""
    content: bytes | None = None
    git_id: str | None = None
    """Its git blob id, when a regular remote file of the same path and size needs it."""


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """A file of the remote repository as the listing gives it."""

    path: str
    size: int
    sha256: str | None
    """The LFS SHA-256; None for a regular file."""
    git_id: str | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """A remote file no local file names (removed only with `delete-extra`)."""

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class UploadPlan:
    """What one commit changes; falsy when the repository is already up to date."""

    repo: str
    exists: bool
    """Whether the repository exists (else `create_repo` makes it)."""
    head: str | None
    """The commit the plan was made against (the commit's parent)."""
    add: tuple[LocalFile, ...] = ()
    replace: tuple[LocalFile, ...] = ()
    delete: tuple[Delete, ...] = ()
    unchanged: tuple[LocalFile, ...] = ()
    extra: tuple[Delete, ...] = ()
    """Remote files no local file names, kept (no `delete-extra`)."""

    def __bool__(self) -> bool:
        return bool(self.add or self.replace or self.delete)

    @property
    def upload_bytes(self) -> int:
        """Bytes the commit sends (files added or replaced)."""
        return sum(f.size for f in (*self.add, *self.replace))


def needs_git_id(local: LocalFile, remote: Iterable[RemoteFile]) -> bool:
    """Whether comparing `local` needs its git blob id: a regular remote file of its size."""
    return any(r.path == local.path and r.sha256 is None and r.size == local.size for r in remote)


def plan_upload(
    repo: str,
    local: Sequence[LocalFile],
    remote: Sequence[RemoteFile] | None,
    *,
    head: str | None = None,
    delete_extra: bool = False,
) -> UploadPlan:
    """Compare; `remote` None means the repository does not exist yet (everything is added)."""
    if remote is None:
        return UploadPlan(repo, False, None, add=tuple(sorted(local, key=_path)))
    there = {r.path: r for r in remote}
    add, replace, unchanged = [], [], []
    for item in sorted(local, key=_path):
        found = there.get(item.path)
        if found is None:
            add.append(item)
        elif _same(item, found):
            unchanged.append(item)
        else:
            replace.append(item)
    names = {item.path for item in local}
    extra = tuple(
        Delete(r.path, r.size) for r in sorted(remote, key=_path) if r.path not in names | KEEP
    )
    return UploadPlan(
        repo,
        True,
        head,
        add=tuple(add),
        replace=tuple(replace),
        delete=extra if delete_extra else (),
        unchanged=tuple(unchanged),
        extra=() if delete_extra else extra,
    )


def _same(local: LocalFile, remote: RemoteFile) -> bool:
    if local.size != remote.size:
        return False
    if remote.sha256 is not None:
        return remote.sha256 == local.sha256
    return local.git_id is not None and local.git_id == remote.git_id


def _path(item: LocalFile | RemoteFile) -> str:
    return item.path
