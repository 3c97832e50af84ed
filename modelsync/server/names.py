"""What counts as a valid repository id, path in a repository, commit id and LFS oid: pure checks.

Request text never reaches the filesystem: a path is only ever a key of a commit's file table, and
these checks keep anything that could escape a directory out of the tables in the first place.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?")
COMMIT_RE = re.compile(r"[0-9a-f]{40}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_PATH_LENGTH = 1024

RESERVED_NAMESPACES = frozenset({"api", "datasets", "spaces", "models", "lfs", "cdn"})
"""First URL segments the server routes itself, so no repository may live there."""


def is_name(part: str) -> bool:
    """A namespace or repository name as the Hub allows it (no `--`, no `..`, ≤ 96 characters)."""
    return _NAME.fullmatch(part) is not None and "--" not in part and ".." not in part


def is_repo_id(repo_id: str) -> bool:
    """`namespace/name`, both valid names, the namespace not reserved."""
    namespace, sep, name = repo_id.partition("/")
    return (
        sep == "/"
        and is_name(namespace)
        and is_name(name)
        and namespace.lower() not in RESERVED_NAMESPACES
    )


def is_repo_path(path: str) -> bool:
    """A relative POSIX path inside a repository: no `..`, `.`, empty segments, `\\` or controls."""
    if not path or len(path) > MAX_PATH_LENGTH or path.startswith("/") or "\\" in path:
        return False
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in path):
        return False
    return all(part not in ("", ".", "..") for part in path.split("/"))


def is_folder_path(path: str) -> bool:
    """A folder inside a repository: a repository path, or `""` for the root."""
    return path == "" or is_repo_path(path)


def is_commit_id(revision: str) -> bool:
    """A full 40-hex commit id (lowercase, as the client sends it)."""
    return COMMIT_RE.fullmatch(revision) is not None


def is_sha256(oid: str) -> bool:
    """A lowercase 64-hex SHA-256, the only LFS oid the server accepts."""
    return SHA256_RE.fullmatch(oid) is not None


def is_ref_name(name: str) -> bool:
    """A branch or tag name: a repository-path-like string that is not a commit id."""
    return is_repo_path(name) and not is_commit_id(name) and " " not in name
