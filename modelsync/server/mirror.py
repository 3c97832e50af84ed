"""`modelsync serve --lock`: exactly the locked repositories at their locked commits.

The caller (ops/serve.py) turns lock files into `Pin`s and gives a `BlobSource` over its blob
store (and, with `--pull-through`, over the upstream registry); this module plans the
repositories (`plan_mirror`, pure) and answers the read routes from them (`LockedRepos`).
Nothing is copied: bytes are served from the store's own blob files.

A locked commit keeps its id, so a client locking against the mirror pins the same commit; its
revision name (e.g. `main`) is a branch pointing there. Only the locked files are in its tree.
A file is stored in LFS by the usual rule (`gitobj.is_lfs`); where that needs the bytes (small
files without an LFS suffix) and the blob is not here, the file is listed as an LFS file (its
SHA-256 is known from the lock) until it is.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from modelsync.digest import is_commit_id
from modelsync.errors import UsageError
from modelsync.log import get_logger
from modelsync.server import gitobj
from modelsync.server.counters import Counters
from modelsync.server.hub_errors import (
    EntryNotFoundError,
    HubError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from modelsync.server.model import Commit, FileEntry, Repo
from modelsync.server.source import DEFAULT_BRANCH, Pulling

log = get_logger(__name__)

AUTHOR = "modelsync"


@dataclass(frozen=True, slots=True)
class PinnedFile:
    """One locked file: its path in the repository, size and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Pin:
    """One locked model: the lock naming it (for messages), the repository, the revision name
    it was locked at, the commit that name resolved to, and the locked files."""

    lock: str
    repo_id: str
    revision: str
    commit: str
    files: tuple[PinnedFile, ...]


@dataclass(frozen=True, slots=True)
class MirrorRepo:
    """One served repository: revision names → commit, and each commit's files by path."""

    repo_id: str
    refs: Mapping[str, str]
    commits: Mapping[str, Mapping[str, PinnedFile]]


class BlobSource(Protocol):
    """Where the bytes of a locked file are (ops/serve.py: the store, then pull-through)."""

    pulls: bool
    """Whether `bring` can fetch a blob that is not here (`--pull-through`)."""

    def local(self, sha256: str) -> Path | None:
        """The blob's file if it is here now, else None."""
        ...

    async def bring(self, repo_id: str, commit: str, file: PinnedFile) -> Path:
        """The blob's file, fetched and verified first if needed; a `HubError` otherwise."""
        ...

    async def stream(self, repo_id: str, commit: str, file: PinnedFile) -> Path | Pulling:
        """The blob's file, or its pull to send as the bytes arrive; a `HubError` otherwise."""
        ...


def plan_mirror(pins: Iterable[Pin]) -> dict[str, MirrorRepo]:
    """The repositories to serve; `UsageError` naming both locks where two disagree.

    Two locks may pin one repository at different commits (both are served) but not one
    revision name to two commits, nor one path of one commit to two contents.
    """
    refs: dict[str, dict[str, tuple[str, str]]] = {}
    files: dict[str, dict[str, dict[str, tuple[PinnedFile, str]]]] = {}
    for pin in pins:
        if not is_commit_id(pin.revision):  # a commit id needs no name to be served under
            named = refs.setdefault(pin.repo_id, {})
            seen = named.setdefault(pin.revision, (pin.commit, pin.lock))
            if seen[0] != pin.commit:
                raise UsageError(
                    f"{seen[1]} pins {pin.repo_id} {pin.revision} at {seen[0]} but {pin.lock} "
                    f"pins it at {pin.commit}",
                    hint="re-lock one of them (`modelsync lock --upgrade`) so both name one "
                    "commit, or serve them from two servers",
                )
        tree = files.setdefault(pin.repo_id, {}).setdefault(pin.commit, {})
        for file in pin.files:
            known = tree.setdefault(file.path, (file, pin.lock))
            if known[0] != file:
                raise UsageError(
                    f"{known[1]} and {pin.lock} disagree on {pin.repo_id}/{file.path} at "
                    f"{pin.commit} (sha256 {known[0].sha256} vs {file.sha256})",
                    hint="restore the edited lock from git or run `modelsync lock` again",
                )
    return {
        repo_id: MirrorRepo(
            repo_id,
            MappingProxyType({name: commit for name, (commit, _) in refs.get(repo_id, {}).items()}),
            MappingProxyType(
                {
                    commit: MappingProxyType({p: f for p, (f, _) in sorted(tree.items())})
                    for commit, tree in commits.items()
                }
            ),
        )
        for repo_id, commits in sorted(files.items())
    }


def _needs_bytes(file: PinnedFile) -> bool:
    """Whether the LFS rule needs the file's first bytes (size and suffix do not decide)."""
    return file.size > 0 and gitobj.is_lfs(file.path, file.size, b"\0") != gitobj.is_lfs(
        file.path, file.size, b""
    )


@dataclass(frozen=True, slots=True)
class _Facts:
    lfs: bool
    git_sha1: str


def _facts_of(path: Path, size: int) -> _Facts | None:
    """Whether a small file is binary, and its git blob id, read from its bytes (None if the
    file is not the locked size: clients judge its bytes, here it just is not exact)."""
    data = path.read_bytes()
    if len(data) != size:
        return None
    return _Facts(
        lfs=b"\0" in data[: gitobj.BINARY_SNIFF_BYTES],
        git_sha1=hashlib.sha1(
            gitobj.git_blob_header(size) + data, usedforsecurity=False
        ).hexdigest(),
    )


class LockedRepos:
    """The read side of the server over planned locked repositories (a `source.Repos`)."""

    def __init__(
        self,
        repos: Mapping[str, MirrorRepo],
        source: BlobSource,
        *,
        reload: Callable[[], Mapping[str, MirrorRepo] | None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counters = Counters()
        self._repos: Mapping[str, MirrorRepo] = MappingProxyType(dict(repos))
        """Swapped whole by `refresh`: a reader takes it once and sees one plan."""
        self._source = source
        self._reload = reload
        self._created = int(clock())
        self._lock = threading.Lock()
        self._facts: dict[str, _Facts] = {}

    def refresh(self) -> None:
        """Serve what the locks pin now, if one of them changed (`reload` says)."""
        repos = self._reload() if self._reload is not None else None
        if repos is not None:
            self._repos = MappingProxyType(dict(repos))

    def repo_ids(self) -> list[str]:
        """Every served repository id, sorted."""
        return sorted(self._repos)

    def get(self, repo_id: str) -> Repo:
        """The repository (its revision names as branches); `RepoNotFoundError` if not locked."""
        repo = self._repos.get(repo_id)
        if repo is None:
            raise RepoNotFoundError(repo_id)
        return Repo(repo_id, self._created, branches=repo.refs)

    def _resolve(self, repo_id: str, revision: str) -> tuple[str, Mapping[str, PinnedFile]]:
        """The commit a revision names and its locked files."""
        repo = self._repos.get(repo_id)
        if repo is None:
            raise RepoNotFoundError(repo_id)
        name = revision.removeprefix("refs/heads/").removeprefix("refs/tags/")
        commit = repo.refs.get(revision) or repo.refs.get(name)
        if commit is None and revision in repo.commits:
            commit = revision
        if commit is None:
            raise RevisionNotFoundError(repo_id, revision)
        return commit, repo.commits[commit]

    def head(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> Commit:
        """The locked commit a revision name or commit id names, with only the locked files."""
        commit, files = self._resolve(repo_id, revision)
        return Commit(
            id=commit,
            parent=None,
            title="Locked commit served by modelsync",
            message="",
            author=AUTHOR,
            date=self._created,
            files=MappingProxyType({p: self._entry(f) for p, f in files.items()}),
        )

    def list_commits(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> list[Commit]:
        """Only the locked commit: its history is not served."""
        return [self.head(repo_id, revision)]

    def used_storage(self, repo_id: str) -> int:
        """Bytes of the distinct blobs of the repository's locked files."""
        repo = self._repos.get(repo_id)
        if repo is None:
            return 0
        sizes = {f.sha256: f.size for tree in repo.commits.values() for f in tree.values()}
        return sum(sizes.values())

    def local_blob(self, sha256: str) -> Path | None:
        """The store's blob file, if it is there."""
        return self._source.local(sha256)

    async def prepare(self, repo_id: str, revision: str) -> None:
        """Read the small files whose LFS status and git id need their bytes; with
        pull-through, fetch those not here first."""
        commit, files = self._resolve(repo_id, revision)
        with self._lock:
            todo = [f for f in files.values() if _needs_bytes(f) and f.sha256 not in self._facts]
        for file in todo:
            path = self._source.local(file.sha256)
            if path is None and self._source.pulls:
                try:
                    path = await self._source.bring(repo_id, commit, file)
                except HubError as err:  # listed as LFS meanwhile; never blocks other files
                    log.warning(
                        "serve.listing_inexact", file=f"{repo_id}/{file.path}", error=err.message
                    )
            if path is not None:
                facts = await asyncio.to_thread(_facts_of, path, file.size)
                if facts is not None:
                    with self._lock:
                        self._facts[file.sha256] = facts

    async def blob(self, repo_id: str, commit: str, entry: FileEntry) -> Path | Pulling:
        """The store's blob file of a locked file, or the pull bringing a missing one."""
        file = self._resolve(repo_id, commit)[1].get(entry.path)
        if file is None:  # the locks changed since the request began
            raise EntryNotFoundError(entry.path, commit)
        return await self._source.stream(repo_id, commit, file)

    def _entry(self, file: PinnedFile) -> FileEntry:
        if _needs_bytes(file):
            with self._lock:
                facts = self._facts.get(file.sha256)
            if facts is not None:
                return FileEntry(file.path, file.size, file.sha256, facts.git_sha1, facts.lfs)
        lfs = gitobj.is_lfs(file.path, file.size, b"\0")
        # An LFS entry's git id is never read (its blob id and ETag come from the pointer and
        # the SHA-256); an empty file's is the empty blob's.
        git_sha1 = "" if lfs else gitobj.git_blob_oid(b"")
        return FileEntry(file.path, file.size, file.sha256, git_sha1, lfs)
