"""Repository folders `<root>/<namespace>/<name>/`: hashing them in, writing `main` back out.

Import hashes each file where it lies. LFS files (model weights) are served from the folder
itself, never copied: while the file's stat is what was hashed, it holds those bytes; once it
changes, the old commit's bytes are gone (a rescan commits the new ones). Regular files (small
text, at most 10 MiB by the Hub's rule) are copied into the blob store while hashing (one read),
so their history survives edits. A stat cache, kept in `.hub/folders.json`, spares re-hashing
unchanged files, across restarts too. Write-back makes the folder match `main` after each
commit, so a later import finds nothing to commit; an uploaded LFS object is moved (renamed)
from the blob store into the folder, not copied, and is then served from there. Symlinks
are never followed, imported or written through.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

from modelsync import atomic
from modelsync.digest import CHUNK, is_sha256
from modelsync.errors import UsageError
from modelsync.log import get_logger
from modelsync.paths import open_below
from modelsync.server import gitobj, names
from modelsync.server.blobs import BlobStore, Hashed, Hasher, SizeMismatchError
from modelsync.server.model import FileEntry

log = get_logger(__name__)

_StatKey = tuple[int, int, int, int]
_READ_ATTEMPTS = 3


def file_entry(path: str, hashed: Hashed, *, lfs: bool | None = None) -> FileEntry:
    """The entry of hashed content at `path`; `lfs=None` applies the LFS rule."""
    return FileEntry(
        path=path,
        size=hashed.size,
        sha256=hashed.sha256,
        git_sha1=hashed.git_sha1,
        lfs=gitobj.is_lfs(path, hashed.size, hashed.head) if lfs is None else lfs,
    )


def _stat_key(st: os.stat_result) -> _StatKey:
    return (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


class BusyError(Exception):
    """A file kept changing while it was read (being written right now, e.g. a model being
    copied in): its repository waits for a later look."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: kept changing while being read")
        self.path = path


STAT_CACHE = "folders.json"
"""In the state folder: path → (stat, digests) of every file hashed in place."""


def _hash_in_place(f: BinaryIO, size: int) -> Hashed:
    """The digests of a file, read once, nothing written."""
    hasher = Hasher(size)
    while chunk := f.read(CHUNK):
        hasher.update(chunk)
    return hasher.result()


@contextlib.contextmanager
def _open_plain(root: Path, path: Path) -> Iterator[BinaryIO | None]:
    """`path`, a file below `root`, opened without following a symlink at any level below
    `root` (a local writer may swap a file or folder for one after it was listed: its target
    is never read); None when it is not a regular file now."""
    fd = -1
    with contextlib.suppress(OSError):
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fd = open_below(root_fd, path.relative_to(root).parts)
        finally:
            os.close(root_fd)
    if fd < 0:
        yield None
        return
    with os.fdopen(fd, "rb") as f:
        yield f if stat.S_ISREG(os.fstat(fd).st_mode) else None


class RepoFolders:
    """The folders under `root` that hold repositories' `main`."""

    def __init__(
        self,
        root: Path,
        blobs: BlobStore,
        on_hashed: Callable[[Hashed], None],
        state_dir: Path | None = None,
    ) -> None:
        self.root = root
        self._blobs = blobs
        self._on_hashed = on_hashed
        self._cache_path = (state_dir or root / ".hub") / STAT_CACHE
        self._lock = threading.Lock()
        self._stat_cache: dict[str, tuple[_StatKey, Hashed]] = self._load_cache()
        self._located: dict[str, str] = {
            hashed.sha256: path for path, (_, hashed) in self._stat_cache.items()
        }
        """Content → a folder file that held it when hashed (checked by stat when served)."""

    def content(self, sha256: str) -> Path | None:
        """A folder file holding these bytes now (its stat is what was hashed), else None."""
        with self._lock:
            path = self._located.get(sha256)
            cached = self._stat_cache.get(path) if path else None
        if path is None or cached is None or cached[1].sha256 != sha256:
            return None
        try:
            if _stat_key(os.lstat(path)) != cached[0]:
                return None
        except OSError:
            return None
        return Path(path)

    def save_cache(self) -> None:
        """Write the stat cache of the files that still exist (after a scan)."""
        with self._lock:
            entries = dict(self._stat_cache)
        data = {
            path: [*key, h.sha256, h.git_sha1, h.size, b"\0" in h.head]
            for path, (key, h) in sorted(entries.items())
            if os.path.lexists(path)
        }
        text = json.dumps(data, separators=(",", ":"))
        try:
            if self._cache_path.read_text(encoding="utf-8") == text:
                return
        except OSError:
            pass
        atomic.write_text(self._cache_path, text)

    def _load_cache(self) -> dict[str, tuple[_StatKey, Hashed]]:
        try:
            data = json.loads(self._cache_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}  # no cache (or a broken one): files are hashed again, nothing is lost
        cache: dict[str, tuple[_StatKey, Hashed]] = {}
        if not isinstance(data, dict):
            return cache
        for path, row in data.items():
            try:
                size, mtime, ino, ctime, sha256, git_sha1, length, binary = row
                key = (int(size), int(mtime), int(ino), int(ctime))
            except (TypeError, ValueError):
                continue
            if is_sha256(sha256) and isinstance(git_sha1, str):
                # Only whether the head holds a NUL byte matters (the LFS rule).
                cache[path] = (key, Hashed(sha256, git_sha1, int(length), b"\0" if binary else b""))
        return cache

    def folder(self, repo_id: str) -> Path:
        """The folder of one repository (whether or not it exists)."""
        return self.root.joinpath(*repo_id.split("/"))

    def repo_ids(self) -> list[str]:
        """Ids of the real (not symlinked) `<namespace>/<name>` folders, skipping `.hub` & co."""
        found = []
        for ns_dir in sorted(self.root.iterdir()):
            if ns_dir.name.startswith(".") or ns_dir.is_symlink() or not ns_dir.is_dir():
                continue
            for repo_dir in sorted(ns_dir.iterdir()):
                repo_id = f"{ns_dir.name}/{repo_dir.name}"
                if not repo_dir.is_symlink() and repo_dir.is_dir() and names.is_repo_id(repo_id):
                    found.append(repo_id)
        return found

    def scan(self, repo_id: str) -> dict[str, FileEntry]:
        """Hash every regular file of the repository folder, storing new content as blobs."""
        folder = self.folder(repo_id)
        if folder.is_symlink() or folder.parent.is_symlink() or not folder.is_dir():
            raise UsageError(
                f"cannot import {repo_id}: {folder} is not a folder",
                hint="create it (symlinked folders are not served)",
            )
        files: dict[str, FileEntry] = {}
        for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
            base = Path(dirpath)
            dirnames[:] = sorted(d for d in dirnames if d != ".git" and not (base / d).is_symlink())
            for name in sorted(filenames):
                source = base / name
                rel = source.relative_to(folder).as_posix()
                if source.is_symlink() or not source.is_file() or not names.is_repo_path(rel):
                    log.warning("import.skipped", repo=repo_id, path=rel, reason="not a plain file")
                    continue
                files[rel] = file_entry(rel, self._hash(source, rel))
        return files

    def _hash(self, source: Path, rel: str) -> Hashed:
        for _ in range(_READ_ATTEMPTS):
            with _open_plain(self.root, source) as f:
                if f is None:  # swapped for a symlink or something else since it was listed
                    continue
                key = _stat_key(os.fstat(f.fileno()))
                with self._lock:
                    cached = self._stat_cache.get(str(source))
                if cached is not None and cached[0] == key:
                    hashed = cached[1]
                else:
                    try:
                        hashed = self._hash_file(f, rel, key[0])
                    except SizeMismatchError:  # being written right now: read it again
                        continue
                    if _stat_key(os.fstat(f.fileno())) != key:
                        continue
                    self._on_hashed(hashed)
            with self._lock:
                self._stat_cache[str(source)] = (key, hashed)
                self._located[hashed.sha256] = str(source)
            return hashed
        raise BusyError(source)

    def _hash_file(self, f: BinaryIO, rel: str, size: int) -> Hashed:
        """LFS content is hashed where it lies; a regular file is copied into the blob store
        as it is hashed, so its history survives edits (it is small by the LFS rule)."""
        head = f.read(gitobj.BINARY_SNIFF_BYTES)
        f.seek(0)
        if gitobj.is_lfs(rel, size, head):
            return _hash_in_place(f, size)
        return self._blobs.put_file(f)

    def write_back(
        self, repo_id: str, old: Mapping[str, FileEntry], new: Mapping[str, FileEntry]
    ) -> None:
        """Make the repository folder match `new` (touching only what changed since `old`)."""
        folder = self.folder(repo_id)
        if folder.is_symlink() or folder.parent.is_symlink():
            log.warning("writeback.skipped", repo=repo_id, reason="symlinked folder")
            return
        for path in sorted(old.keys() - new.keys()):
            target = folder / path
            try:
                if _no_symlink_between(folder, target) and (
                    target.is_file() or target.is_symlink()
                ):
                    target.unlink()
                    _prune(folder, target.parent)
            except OSError as exc:
                log.warning("writeback.failed", repo=repo_id, path=path, error=exc.strerror)
        for path, entry in new.items():
            if path not in old or not old[path].same_content(entry):
                self._write(folder / path, entry, repo_id)

    def _write(self, target: Path, entry: FileEntry, repo_id: str) -> None:
        if not _no_symlink_between(self.folder(repo_id), target):
            log.warning("writeback.skipped", repo=repo_id, path=entry.path, reason="symlink")
            return
        # The temp file lives in .hub/tmp (same filesystem), so a concurrent scan of the
        # repository folder never sees a half-written file.
        temp = self._blobs.tmp_dir / f"writeback-{secrets.token_hex(8)}"
        source = self._blobs.path(entry.sha256)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if entry.lfs and source.is_file() and _move(source, target):
                pass  # an uploaded model file now lies in the folder only (no second copy)
            else:
                if not source.is_file():
                    source = self.content(entry.sha256) or source
                shutil.copyfile(source, temp)
                temp.chmod(0o644)
                temp.replace(target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            log.warning("writeback.failed", repo=repo_id, path=entry.path, error=exc.strerror)
            return
        hashed = Hashed(entry.sha256, entry.git_sha1, entry.size, b"\0" if entry.lfs else b"")
        with self._lock:
            self._stat_cache[str(target)] = (_stat_key(target.stat()), hashed)
            self._located[entry.sha256] = str(target)


def _move(blob: Path, target: Path) -> bool:
    """Move a stored blob to `target` by one rename (it is in the blob store or there, never
    nowhere); False where they are on two filesystems (the caller copies)."""
    blob.chmod(0o644)
    try:
        blob.replace(target)
    except OSError as exc:
        blob.chmod(0o444)
        if exc.errno == errno.EXDEV:
            return False
        raise
    return True


def _no_symlink_between(folder: Path, target: Path) -> bool:
    """No folder between the repository folder and the target is a symlink."""
    current = target.parent
    while current != folder:
        if current.is_symlink():
            return False
        current = current.parent
    return True


def _prune(folder: Path, directory: Path) -> None:
    """Remove now-empty folders from `directory` up to (not including) the repository folder."""
    while directory != folder:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
