"""Repository folders `<root>/<namespace>/<name>/`: hashing them in, writing `main` back out.

Import copies each new file into the blob store while hashing it (one read), so a commit's bytes
survive later edits of the folder; a stat cache spares re-hashing unchanged files. Write-back
makes the folder match `main` after each commit, so a later import finds nothing to commit.
Symlinks are never followed, imported or written through.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path

from modelsync.errors import UsageError
from modelsync.log import get_logger
from modelsync.server import gitobj, names
from modelsync.server.blobs import BlobStore, Hashed, SizeMismatchError
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


class RepoFolders:
    """The folders under `root` that hold repositories' `main`."""

    def __init__(self, root: Path, blobs: BlobStore, on_hashed: Callable[[Hashed], None]) -> None:
        self.root = root
        self._blobs = blobs
        self._on_hashed = on_hashed
        self._stat_cache: dict[str, tuple[_StatKey, Hashed]] = {}

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
                files[rel] = file_entry(rel, self._hash(source))
        return files

    def _hash(self, source: Path) -> Hashed:
        for _ in range(_READ_ATTEMPTS):
            key = _stat_key(source.stat())
            cached = self._stat_cache.get(str(source))
            if cached is not None and cached[0] == key:
                return cached[1]
            try:
                hashed = self._blobs.put_file(source)
            except SizeMismatchError:  # being written right now: read it again
                continue
            self._stat_cache[str(source)] = (key, hashed)
            self._on_hashed(hashed)
            return hashed
        raise UsageError(f"cannot import {source}: it kept changing while being read")

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
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self._blobs.path(entry.sha256), temp)
            temp.chmod(0o644)
            temp.replace(target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            log.warning("writeback.failed", repo=repo_id, path=entry.path, error=exc.strerror)
            return
        head = self._blobs.head(entry.sha256)
        hashed = Hashed(entry.sha256, entry.git_sha1, entry.size, head)
        self._stat_cache[str(target)] = (_stat_key(target.stat()), hashed)


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
