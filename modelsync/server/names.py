"""What counts as a valid repository id, path, reference name and number: pure checks.

Request text never reaches the filesystem: a path is only ever a key of a commit's file table, and
these checks keep anything that could escape a directory out of the tables in the first place.
"""

from __future__ import annotations

import re

from modelsync.rules import is_commit_id, is_sha256
from modelsync.rules import is_repo_part as is_name
from modelsync.rules import is_safe_path as is_repo_path

# The rules themselves live in modelsync.rules, shared with the manifest, the lock and the client.
__all__ = [
    "is_commit_id",
    "is_folder_path",
    "is_name",
    "is_ref_name",
    "is_repo_id",
    "is_repo_path",
    "is_sha256",
    "small_number",
]

_SMALL_NUMBER = re.compile(r"[0-9]{1,12}")

RESERVED_NAMESPACES = frozenset({"api", "datasets", "spaces", "models", "lfs", "cdn"})
"""First URL segments the server routes itself, so no repository may live there."""


def is_repo_id(repo_id: str) -> bool:
    """`namespace/name`, both valid names, the namespace not reserved."""
    namespace, sep, name = repo_id.partition("/")
    return (
        sep == "/"
        and is_name(namespace)
        and is_name(name)
        and namespace.lower() not in RESERVED_NAMESPACES
    )


def is_folder_path(path: str) -> bool:
    """A folder inside a repository: a repository path, or `""` for the root."""
    return path == "" or is_repo_path(path)


def is_ref_name(name: str) -> bool:
    """A branch or tag name: a repository-path-like string that is not a commit id."""
    return is_repo_path(name) and not is_commit_id(name) and " " not in name


def small_number(text: str) -> int | None:
    """A number of at most 12 ASCII digits from request text, `None` for anything else.

    `int()` alone would accept `²`-like Unicode digits only to fail on them later, and raises
    past 4300 digits: both were 500s.
    """
    return int(text) if _SMALL_NUMBER.fullmatch(text) else None
