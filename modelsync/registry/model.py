"""What a registry says about a repository at one commit (pure values and checks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from modelsync.registry.errors import UnsafePathError
from modelsync.rules import is_safe_path


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One file: its path, size and SHA-256 (None for a non-LFS file the listing does not hash)."""

    path: str
    size: int
    sha256: str | None
    lfs: bool = False


@dataclass(frozen=True, slots=True)
class RepoSnapshot:
    """A repository at a commit: every file with its size and, where known, its SHA-256."""

    registry: str
    repo: str
    """`org/name`, or the URL of a plain file."""
    revision: str
    commit: str
    """40 hex digits; `sha256:<hex>` (the manifest's digest) on an Ollama registry; `""` for a
    plain URL, which has no commits."""
    files: tuple[RemoteFile, ...]
    gated: bool = False
    private: bool = False
    gguf: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    """The Hub's `gguf` summary where it sends one (parameter count, architecture, context)."""
    date: datetime | None = None
    """When the commit was made (the Hub's `lastModified` at that revision), where known."""

    def file(self, path: str) -> RemoteFile | None:
        """The listed file at `path`, or None."""
        return next((f for f in self.files if f.path == path), None)

    @property
    def where(self) -> str:
        """`hf:org/repo@abc1234` (a plain URL: the URL), for messages."""
        if not self.commit:
            return self.repo
        short = self.commit[7:19] if self.commit.startswith("sha256:") else self.commit[:7]
        return f"{self.registry}:{self.repo}@{short}"

    def where_of(self, path: str) -> str:
        """`hf:org/repo@abc1234: path` (a plain URL: the URL), for messages about one file."""
        return f"{self.where}: {path}" if self.commit else self.repo


def check_path(registry: str, repo: str, path: str) -> str:
    """Refuse a listed path that is absolute, has `..`, `.` or empty parts, backslashes or NUL."""
    if not is_safe_path(path):
        raise UnsafePathError(
            f"{registry}:{repo} lists an unsafe file path {path!r} "
            "(absolute, '..', backslash, NUL or control characters); nothing was written",
            hint="the registry is broken or hostile: fix or remove it from models.toml",
        )
    return path


def file_name(url: str) -> str:
    """The last path segment of a URL, without its query: a plain file's name in the lock."""
    return url.rsplit("/", 1)[-1].split("?", 1)[0]
