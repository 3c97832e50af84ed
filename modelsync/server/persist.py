"""The server's state on disk: repositories and commits as JSON under `<root>/.hub/repos`.

Each write is temp + fsync + rename, so a crash leaves the old or the new file, never a torn one.
Commits are immutable and written once; `repo.json` holds settings and refs; `lfs-uploads/`
names the LFS objects uploaded to the repository (see `RepoStore.lfs_usable`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modelsync import atomic
from modelsync.digest import is_sha256
from modelsync.errors import ModelsyncError
from modelsync.server.model import Commit, FileEntry, Repo, RepoSettings

FORMAT = 1
UPLOADS = "lfs-uploads"
"""Per repository: one empty file per LFS object uploaded to it, so ownership outlives a restart."""


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to `path` through a fsynced temp file and a rename."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1)
    atomic.write_text(path, text + "\n")


def read_json(path: Path) -> Any:
    """Read one state file; a broken one is an error naming it, never silently skipped."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelsyncError(
            f"server state file {path} is unreadable: {exc}",
            hint="restore it from a backup or remove the repository's folder under .hub/repos",
        ) from exc


def repo_dir(state_dir: Path, repo_id: str) -> Path:
    """The state folder of one repository."""
    return state_dir / "repos" / repo_id


def write_upload_mark(state_dir: Path, repo_id: str, sha256: str) -> None:
    """Record that an LFS object was uploaded to a repository (an empty file named by digest)."""
    atomic.write_bytes(repo_dir(state_dir, repo_id) / UPLOADS / sha256, b"")


def read_upload_marks(state_dir: Path, repo_id: str) -> Iterator[str]:
    """The digests of the LFS objects uploaded to a repository (temp files skipped)."""
    folder = repo_dir(state_dir, repo_id) / UPLOADS
    if folder.is_dir():
        yield from (p.name for p in sorted(folder.iterdir()) if is_sha256(p.name))


def repo_to_json(repo: Repo) -> dict[str, object]:
    """`repo.json` content."""
    s = repo.settings
    return {
        "format": FORMAT,
        "repo_id": repo.repo_id,
        "created_at": repo.created_at,
        "settings": {
            "private": s.private,
            "gated": s.gated,
            "downloads": s.downloads,
            "likes": s.likes,
            "tags": list(s.tags),
            "approved_users": list(s.approved_users),
        },
        "branches": dict(repo.branches),
        "tags": dict(repo.tags),
    }


def repo_from_json(data: dict[str, Any]) -> Repo:
    """A `Repo` from `repo.json` content."""
    s = data["settings"]
    return Repo(
        repo_id=data["repo_id"],
        created_at=int(data["created_at"]),
        settings=RepoSettings(
            private=bool(s["private"]),
            gated=s["gated"] if s["gated"] in ("auto", "manual") else False,
            downloads=int(s["downloads"]),
            likes=int(s["likes"]),
            tags=tuple(s["tags"]),
            approved_users=tuple(s["approved_users"]),
        ),
        branches=MappingProxyType(dict(data["branches"])),
        tags=MappingProxyType(dict(data["tags"])),
    )


def commit_to_json(commit: Commit) -> dict[str, object]:
    """`commits/<id>.json` content."""
    return {
        "format": FORMAT,
        "id": commit.id,
        "parent": commit.parent,
        "title": commit.title,
        "message": commit.message,
        "author": commit.author,
        "date": commit.date,
        "files": [[e.path, e.size, e.sha256, e.git_sha1, e.lfs] for e in commit.files.values()],
    }


def commit_from_json(data: dict[str, Any]) -> Commit:
    """A `Commit` from its JSON, keeping the stored id."""
    files = {
        path: FileEntry(path=path, size=int(size), sha256=sha256, git_sha1=git_sha1, lfs=bool(lfs))
        for path, size, sha256, git_sha1, lfs in data["files"]
    }
    return Commit(
        id=data["id"],
        parent=data["parent"],
        title=data["title"],
        message=data["message"],
        author=data["author"],
        date=int(data["date"]),
        files=MappingProxyType(dict(sorted(files.items()))),
    )
