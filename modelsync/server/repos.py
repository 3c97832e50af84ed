"""RepoStore: the repositories, their commits and refs, persisted under `<root>/.hub`.

Repositories are also folders, `<root>/<namespace>/<name>/...` (see `folders`): importing a
folder commits its files to `main` when they differ from the head, and every commit to `main` is
written back to the folder, so the folder and `main` agree and a rescan after an upload changes
nothing.

Every method is synchronous and thread-safe: state is immutable values swapped under one lock;
hashing and copying (into the blob store, back to the folders) run outside it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from modelsync import digest
from modelsync.log import get_logger
from modelsync.server import gitobj, names, persist
from modelsync.server.blobs import BlobStore, Hashed
from modelsync.server.counters import Counters
from modelsync.server.folders import BusyError, RepoFolders, file_entry
from modelsync.server.hub_errors import (
    BadRequestError,
    ConflictError,
    EntryNotFoundError,
    PreconditionFailedError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from modelsync.server.model import (
    AddBytes,
    Commit,
    DeleteFolder,
    DeletePath,
    Event,
    FileEntry,
    Gated,
    Operation,
    Repo,
    RepoSettings,
)
from modelsync.server.source import DEFAULT_BRANCH

log = get_logger(__name__)

SERVER_AUTHOR = "modelsync"
IMPORT_TITLE = "Import from directory"


class RepoStore:
    """Repositories under `root`; state in `root/.hub` (never served)."""

    def __init__(self, root: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.state_dir = root / ".hub"
        self.blobs = BlobStore(self.state_dir)
        self.counters = Counters()
        self._clock = clock
        self._lock = threading.RLock()
        self._repos: dict[str, Repo] = {}
        self._commits: dict[str, dict[str, Commit]] = {}
        self._git_sha1: dict[str, str] = {}
        self._uploaded_to: dict[str, set[str]] = {}
        """LFS object → the repositories it was uploaded to (persisted as upload marks)."""
        self._held_by: dict[str, set[str]] = {}
        """Content → the repositories whose commits hold it (imports count: they are commits)."""
        self.folders = RepoFolders(root, self.blobs, self.remember, self.state_dir)
        self._folder_lock = threading.Lock()
        self._folder_trees: dict[str, Mapping[str, FileEntry]] = {}
        """What each repository folder holds, as last imported or written back."""
        self._imported: set[str] = set()
        """Repositories imported from their folder by this process: one whose folder goes away
        goes with it (`refresh`)."""
        self._load()

    # ---- reading -------------------------------------------------------------------------

    def repo_ids(self) -> list[str]:
        """Every repository id, sorted."""
        with self._lock:
            return sorted(self._repos)

    def exists(self, repo_id: str) -> bool:
        """Whether the repository exists."""
        with self._lock:
            return repo_id in self._repos

    def get(self, repo_id: str) -> Repo:
        """The repository; `RepoNotFoundError` if missing."""
        with self._lock:
            repo = self._repos.get(repo_id)
        if repo is None:
            raise RepoNotFoundError(repo_id)
        return repo

    def head(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> Commit:
        """The commit a branch, tag, `refs/heads|tags/…` name or 40-hex id points at."""
        with self._lock:
            repo = self.get(repo_id)
            commits = self._commits[repo_id]
            for candidate in (revision, revision.removeprefix("refs/heads/")):
                if candidate in repo.branches:
                    return commits[repo.branches[candidate]]
            for candidate in (revision, revision.removeprefix("refs/tags/")):
                if candidate in repo.tags:
                    return commits[repo.tags[candidate]]
            if revision in commits:
                return commits[revision]
        raise RevisionNotFoundError(repo_id, revision)

    def list_commits(self, repo_id: str, revision: str = DEFAULT_BRANCH) -> list[Commit]:
        """The history of a revision, newest first."""
        with self._lock:
            commit: Commit | None = self.head(repo_id, revision)
            history: list[Commit] = []
            while commit is not None:
                history.append(commit)
                commit = self._commits[repo_id].get(commit.parent) if commit.parent else None
            return history

    def used_storage(self, repo_id: str) -> int:
        """Bytes of the distinct blobs referenced by any commit of the repository."""
        with self._lock:
            commits = list(self._commits.get(repo_id, {}).values())
        sizes = {e.sha256: e.size for c in commits for e in c.files.values()}
        return sum(sizes.values())

    def remember(self, hashed: Hashed) -> None:
        """Note the git blob id of stored content (e.g. an LFS upload) to spare re-reading it."""
        with self._lock:
            self._git_sha1[hashed.sha256] = hashed.git_sha1

    def lfs_usable(self, repo_id: str, sha256: str) -> bool:
        """Whether content may be committed to the repository by digest alone.

        Only content uploaded to this repository or held by one of its commits: a digest is no
        secret (tree listings show it), so knowing one must never give access to the bytes.
        """
        with self._lock:
            return repo_id in self._uploaded_to.get(sha256, ()) or repo_id in self._held_by.get(
                sha256, ()
            )

    def lfs_holders(self, sha256: str) -> list[Repo]:
        """The repositories whose commits hold the content (pending uploads do not count)."""
        with self._lock:
            return [self._repos[r] for r in sorted(self._held_by.get(sha256, ()))]

    def record_upload(self, repo_id: str, sha256: str) -> None:
        """Note that the bytes of a stored LFS object were uploaded to the repository."""
        with self._lock:
            if repo_id in self._uploaded_to.get(sha256, ()):
                return
            persist.write_upload_mark(self.state_dir, repo_id, sha256)
            self._uploaded_to.setdefault(sha256, set()).add(repo_id)

    def local_blob(self, sha256: str) -> Path | None:
        """The file holding these bytes: a stored blob (uploads, regular files), else a
        repository folder's file still as it was hashed (imported LFS content); None if gone."""
        path = self.blobs.path(sha256)
        return path if path.is_file() else self.folders.content(sha256)

    def content_size(self, sha256: str) -> int | None:
        """The size of content held here (`local_blob`), None if none holds it."""
        path = self.local_blob(sha256)
        try:
            return path.stat().st_size if path is not None else None
        except OSError:
            return None

    async def prepare(self, repo_id: str, revision: str) -> None:
        """Nothing to do: every commit here is exact from the start."""

    async def blob(self, repo_id: str, commit: str, entry: FileEntry) -> Path:
        """The file holding `entry`'s bytes; a 404 once its folder file changed."""
        path = self.local_blob(entry.sha256)
        if path is None:
            raise EntryNotFoundError(
                entry.path,
                commit,
                f"{entry.path} of {commit} is no longer held: its file in the repository "
                "folder changed since (ask for the new commit)",
            )
        return path

    def repo_folder(self, repo_id: str) -> Path:
        """The folder a repository's `main` lives in."""
        return self.folders.folder(repo_id)

    # ---- changing ------------------------------------------------------------------------

    def create_repo(
        self, repo_id: str, private: bool = False, *, author: str = SERVER_AUTHOR
    ) -> Repo:
        """A new repository whose `main` holds `.gitattributes`; `ConflictError` if it exists."""
        self._check_repo_id(repo_id)
        hashed = self.blobs.put_bytes(gitobj.GITATTRIBUTES)
        self.remember(hashed)
        with self._lock:
            if repo_id in self._repos:
                raise ConflictError("You already created this model repo")
            now = int(self._clock())
            self._repos[repo_id] = Repo(repo_id, now, RepoSettings(private=private))
            self._commits[repo_id] = {}
            files = {".gitattributes": file_entry(".gitattributes", hashed)}
            commit = self._new_commit(repo_id, None, files, "initial commit", author=author)
            self._set_branch(repo_id, DEFAULT_BRANCH, commit)
            log.info("repo.created", repo=repo_id, private=private, commit=commit.id)
            repo = self._repos[repo_id]
        self._sync_folder(repo_id)
        return repo

    def import_directory(self, repo_id: str) -> Commit:
        """Commit `<root>/<namespace>/<name>` to `main` if it differs from the head.

        Creates the repository if needed. Symlinks and names that cannot be repository paths are
        skipped; a folder that does not change anything makes no commit (and logs a no-op event).
        """
        self._check_repo_id(repo_id)
        files = self.folders.scan(repo_id)
        self.folders.save_cache()
        with self._lock:
            if repo_id not in self._repos:
                self._repos[repo_id] = Repo(repo_id, int(self._clock()))
                self._commits[repo_id] = {}
                self._save_repo(repo_id)
            head_id = self._repos[repo_id].branches.get(DEFAULT_BRANCH)
            head = self._commits[repo_id][head_id] if head_id else None
            self._folder_trees[repo_id] = files
            self._imported.add(repo_id)
            if head is not None and head.same_tree(files):
                self._noop(repo_id, head, IMPORT_TITLE)
                return head
            commit = self._new_commit(repo_id, head_id, files, IMPORT_TITLE)
            self._set_branch(repo_id, DEFAULT_BRANCH, commit)
            return commit

    def refresh(self) -> list[str]:
        """Import the folders that appeared or changed since last imported or written back;
        returns their ids. Unchanged folders cost stat() calls and make no event."""
        changed = []
        with self._folder_lock:  # never between a write-back's files
            present = self.folders.repo_ids()
            for repo_id in present:
                try:
                    files = self.folders.scan(repo_id)
                    with self._lock:
                        known = self._folder_trees.get(repo_id)
                    if known is None or not _same_tree(known, files):
                        self.import_directory(repo_id)
                        changed.append(repo_id)
                except BusyError as err:  # kept as it was; the next look tries again
                    log.info("import.busy", repo=repo_id, path=str(err.path))
            with self._lock:
                gone = sorted(self._imported - set(present))
            for repo_id in gone:
                if not self.folders.folder(repo_id).exists():
                    self._retire(repo_id)
                    changed.append(repo_id)
            self.folders.save_cache()
        return changed

    def _retire(self, repo_id: str) -> None:
        """Stop serving a repository whose folder was removed; its state is moved to
        `.hub/removed/` (kept, never deleted on sight)."""
        with self._lock:
            self._repos.pop(repo_id, None)
            self._commits.pop(repo_id, None)
            self._folder_trees.pop(repo_id, None)
            self._imported.discard(repo_id)
            for holders in (*self._held_by.values(), *self._uploaded_to.values()):
                holders.discard(repo_id)
        state = persist.repo_dir(self.state_dir, repo_id)
        kept = self.state_dir / "removed" / repo_id / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        if state.is_dir():
            kept.parent.mkdir(parents=True, exist_ok=True)
            state.rename(kept)
        self.counters.record_event(Event("repo.removed", repo_id))
        log.info("repo.removed", repo=repo_id, kept=str(kept))

    def rescan(self) -> dict[str, Commit]:
        """Import every `<root>/<namespace>/<name>` folder; returns each repository's head.
        One with a file being written is left for a later look (`refresh`)."""
        heads = {}
        for repo_id in self.folders.repo_ids():
            try:
                heads[repo_id] = self.import_directory(repo_id)
            except BusyError as err:
                log.info("import.busy", repo=repo_id, path=str(err.path))
        return heads

    def commit(
        self,
        repo_id: str,
        branch: str,
        operations: Iterable[Operation],
        title: str,
        *,
        message: str = "",
        parent: str | None = None,
        author: str = SERVER_AUTHOR,
    ) -> Commit:
        """Apply operations on top of `branch` and move it; a commit changing nothing is none.

        `parent`, when given, must be the branch head (else a 412 `PreconditionFailedError`).
        Returns the new commit, or the unchanged head when the operations leave the tree as is.
        """
        staged = [self._stage(op) for op in operations]
        with self._lock:
            repo = self.get(repo_id)
            if branch not in repo.branches:
                raise RevisionNotFoundError(repo_id, branch)
            head = self._commits[repo_id][repo.branches[branch]]
            if parent is not None and parent != head.id:
                raise PreconditionFailedError(
                    f"A commit has happened since {parent}: the head of {branch} is {head.id}"
                )
            files = self._apply(head, staged)
            if head.same_tree(files):
                self._noop(repo_id, head, title)
                return head
            commit = self._new_commit(
                repo_id, head.id, files, title, message=message, author=author
            )
            self._set_branch(repo_id, branch, commit)
        if branch == DEFAULT_BRANCH:
            self._sync_folder(repo_id)
        return commit

    def set_settings(
        self,
        repo_id: str,
        *,
        private: bool | None = None,
        gated: Gated | None = None,
        downloads: int | None = None,
        likes: int | None = None,
        tags: Iterable[str] | None = None,
        approved_users: Iterable[str] | None = None,
    ) -> Repo:
        """Change settings; arguments left `None` keep their value."""
        if gated not in (None, False, "auto", "manual"):
            raise BadRequestError(
                f"Invalid gated value {gated!r}: expected false, 'auto' or 'manual'"
            )
        with self._lock:
            repo = self.get(repo_id)
            old = repo.settings
            settings = RepoSettings(
                private=old.private if private is None else private,
                gated=old.gated if gated is None else gated,
                downloads=old.downloads if downloads is None else downloads,
                likes=old.likes if likes is None else likes,
                tags=old.tags if tags is None else tuple(tags),
                approved_users=old.approved_users
                if approved_users is None
                else tuple(approved_users),
            )
            self._repos[repo_id] = replace(repo, settings=settings)
            self._save_repo(repo_id)
            return self._repos[repo_id]

    def create_branch(self, repo_id: str, name: str, commit: str) -> Commit:
        """A new branch at `commit` (any revision); `ConflictError` if it exists."""
        return self._create_ref(repo_id, name, commit, tag=False)

    def create_tag(self, repo_id: str, name: str, commit: str) -> Commit:
        """A new tag at `commit` (any revision); `ConflictError` if it exists."""
        return self._create_ref(repo_id, name, commit, tag=True)

    # ---- internals -----------------------------------------------------------------------

    @staticmethod
    def _check_repo_id(repo_id: str) -> None:
        if not names.is_repo_id(repo_id):
            raise BadRequestError(
                f"Invalid repo id '{repo_id}': expected namespace/name of letters, digits, '-', "
                "'_', '.' (no '--' or '..', at most 96 characters each)"
            )

    def _create_ref(self, repo_id: str, name: str, revision: str, *, tag: bool) -> Commit:
        if not names.is_ref_name(name):
            raise BadRequestError(f"Invalid reference name '{name}'")
        with self._lock:
            repo = self.get(repo_id)
            target = self.head(repo_id, revision)
            if name in repo.branches or name in repo.tags:
                raise ConflictError(f"Reference already exists: {name}")
            refs = repo.tags if tag else repo.branches
            updated = MappingProxyType({**refs, name: target.id})
            self._repos[repo_id] = (
                replace(repo, tags=updated) if tag else replace(repo, branches=updated)
            )
            self._save_repo(repo_id)
            return target

    def _stage(self, op: Operation) -> tuple[Operation, FileEntry | None]:
        """Store an operation's bytes ahead of taking the lock; deletions carry no entry."""
        if isinstance(op, DeletePath | DeleteFolder):
            return op, None
        if not names.is_repo_path(op.path):
            raise BadRequestError(f"Invalid path in repo: {op.path!r}")
        if isinstance(op, AddBytes):
            hashed = self.blobs.put_bytes(op.data)
            self.remember(hashed)
            return op, file_entry(op.path, hashed)
        size = self.content_size(op.sha256) if digest.is_sha256(op.sha256) else None
        if size is None:
            raise BadRequestError(f"LFS object {op.sha256} for {op.path} was never uploaded")
        if op.size is not None and op.size != size:
            raise BadRequestError(
                f"LFS object {op.sha256} for {op.path} has {size} bytes, not {op.size}"
            )
        head = self._head(op.sha256)
        git_sha1 = self._git_sha1_of_blob(op.sha256, size)
        lfs = gitobj.is_lfs(op.path, size, head) if op.lfs is None else op.lfs
        return op, FileEntry(op.path, size, op.sha256, git_sha1, lfs)

    def _git_sha1_of_blob(self, sha256: str, size: int) -> str:
        with self._lock:
            known = self._git_sha1.get(sha256)
        if known is not None:
            return known
        sha1 = hashlib.sha1(gitobj.git_blob_header(size), usedforsecurity=False)
        path = self.local_blob(sha256)
        if path is None:
            raise BadRequestError(f"LFS object {sha256} is no longer held here")
        with path.open("rb") as f:
            while chunk := f.read(1024 * 1024):
                sha1.update(chunk)
        self.remember(Hashed(sha256, sha1.hexdigest(), size, b""))
        return sha1.hexdigest()

    def _head(self, sha256: str) -> bytes:
        path = self.local_blob(sha256)
        if path is None:
            raise BadRequestError(f"LFS object {sha256} is no longer held here")
        with path.open("rb") as f:
            return f.read(gitobj.BINARY_SNIFF_BYTES)

    @staticmethod
    def _apply(
        head: Commit, staged: Iterable[tuple[Operation, FileEntry | None]]
    ) -> dict[str, FileEntry]:
        files = dict(head.files)
        for op, entry in staged:
            if entry is not None:
                files[entry.path] = entry
            elif isinstance(op, DeletePath):
                if files.pop(op.path.strip("/"), None) is None:
                    raise EntryNotFoundError(
                        op.path, head.id, f"A file with this name doesn't exist: {op.path}"
                    )
            else:
                folder = op.path.strip("/")
                doomed = [p for p in files if not folder or p.startswith(f"{folder}/")]
                if not doomed:
                    raise EntryNotFoundError(
                        op.path, head.id, f"A folder with this name doesn't exist: {op.path}"
                    )
                for path in doomed:
                    del files[path]
        return files

    def _new_commit(
        self,
        repo_id: str,
        parent: str | None,
        files: Mapping[str, FileEntry],
        title: str,
        *,
        message: str = "",
        author: str = SERVER_AUTHOR,
    ) -> Commit:
        commit = Commit.build(
            repo_id=repo_id,
            parent=parent,
            title=title,
            message=message,
            author=author,
            date=int(self._clock()),
            files=files,
        )
        existing = self._commits[repo_id].get(commit.id)
        if existing is not None:  # the very same change on the same parent: reuse it
            return existing
        persist.write_json_atomic(
            persist.repo_dir(self.state_dir, repo_id) / "commits" / f"{commit.id}.json",
            persist.commit_to_json(commit),
        )
        self._commits[repo_id][commit.id] = commit
        self._hold(repo_id, commit)
        self.counters.record_event(
            Event("commit.created", repo_id, {"commit": commit.id, "files": len(commit.files)})
        )
        log.info("commit.created", repo=repo_id, commit=commit.id, files=len(commit.files))
        return commit

    def _hold(self, repo_id: str, commit: Commit) -> None:
        for entry in commit.files.values():
            self._held_by.setdefault(entry.sha256, set()).add(repo_id)

    def _noop(self, repo_id: str, head: Commit, title: str) -> None:
        self.counters.record_event(Event("commit.noop", repo_id, {"commit": head.id}))
        log.info("commit.noop", repo=repo_id, commit=head.id, title=title)

    def _set_branch(self, repo_id: str, branch: str, commit: Commit) -> None:
        repo = self._repos[repo_id]
        branches = MappingProxyType({**repo.branches, branch: commit.id})
        self._repos[repo_id] = replace(repo, branches=branches)
        self._save_repo(repo_id)

    def _sync_folder(self, repo_id: str) -> None:
        """Write the current `main` back to the repository folder.

        Runs outside the state lock (copies can be gigabytes) but one at a time, always towards
        the newest head, so racing commits leave the folder at the last one.
        """
        with self._folder_lock:
            with self._lock:
                head = self._commits[repo_id][self._repos[repo_id].branches[DEFAULT_BRANCH]]
                written = self._folder_trees.get(repo_id, {})
            self.folders.write_back(repo_id, written, head.files)
            with self._lock:
                self._folder_trees[repo_id] = head.files

    def _save_repo(self, repo_id: str) -> None:
        persist.write_json_atomic(
            persist.repo_dir(self.state_dir, repo_id) / "repo.json",
            persist.repo_to_json(self._repos[repo_id]),
        )

    def _load(self) -> None:
        for repo_json in sorted((self.state_dir / "repos").glob("*/*/repo.json")):
            repo = persist.repo_from_json(persist.read_json(repo_json))
            commits = {}
            for commit_json in (repo_json.parent / "commits").glob("*.json"):
                commit = persist.commit_from_json(persist.read_json(commit_json))
                commits[commit.id] = commit
            self._repos[repo.repo_id] = repo
            self._commits[repo.repo_id] = commits
            main = repo.branches.get(DEFAULT_BRANCH)
            if main in commits:
                self._folder_trees[repo.repo_id] = commits[main].files
            for commit in commits.values():
                self._git_sha1.update((e.sha256, e.git_sha1) for e in commit.files.values())
                self._hold(repo.repo_id, commit)
            for sha256 in persist.read_upload_marks(self.state_dir, repo.repo_id):
                self._uploaded_to.setdefault(sha256, set()).add(repo.repo_id)
        if self._repos:
            log.info("state.loaded", repos=len(self._repos))


def _same_tree(old: Mapping[str, FileEntry], new: Mapping[str, FileEntry]) -> bool:
    return old.keys() == new.keys() and all(e.same_content(old[p]) for p, e in new.items())
