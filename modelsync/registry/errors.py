"""Registry errors in the one error tree: "does not exist" is bad input (2), the rest remote (5)."""

from __future__ import annotations

from modelsync.errors import RemoteError, UsageError


class RepoNotFoundError(UsageError):
    """The registry says the repository (or the URL's file) does not exist."""


class RevisionNotFoundError(UsageError):
    """The repository exists but has no such branch, tag or commit."""


class RegistryProtocolError(RemoteError):
    """The registry answered something that is not the Hub protocol (garbage JSON, bad ids)."""


class UnsafePathError(RegistryProtocolError):
    """The registry listed a path that could escape the target folder; nothing is written."""


class LockedCommitGoneError(RemoteError):
    """The registry no longer has a commit the lock pins (design.md section 2: 404 of a locked
    commit is the remote's doing, exit 5)."""
