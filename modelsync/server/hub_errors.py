"""Answers the Hub gives as errors, raised by the store and handlers and rendered by one middleware.

These are HTTP answers, not failures of modelsync: the client reads `X-Error-Code` (which exception
to raise) and `X-Error-Message`, and the body `{"error": ...}` ends up in its message. They never
reach the CLI; `modelsync serve`'s own failures use `modelsync.errors`.
"""

from __future__ import annotations

from collections.abc import Mapping


class HubError(Exception):
    """An error answer: status, optional `X-Error-Code`, a one-line message, extra headers/body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.body = dict(body or {})


class RepoNotFoundError(HubError):
    """404 `RepoNotFound`: missing, or private and not the caller's."""

    def __init__(self, repo_id: str) -> None:
        super().__init__(404, f"Repository not found: {repo_id}", code="RepoNotFound")


class RevisionNotFoundError(HubError):
    """404 `RevisionNotFound`: no branch, tag or commit of that name."""

    def __init__(self, repo_id: str, revision: str) -> None:
        super().__init__(404, f"Invalid rev id: {revision} in {repo_id}", code="RevisionNotFound")


class EntryNotFoundError(HubError):
    """404 `EntryNotFound`, with `X-Repo-Commit` so the client can cache the absence."""

    def __init__(self, path: str, commit: str, message: str | None = None) -> None:
        super().__init__(
            404,
            message or f"Entry not found: {path}",
            code="EntryNotFound",
            headers={"X-Repo-Commit": commit},
        )


class GatedRepoError(HubError):
    """401 (no token) or 403 (token without access) `GatedRepo`."""

    def __init__(self, repo_id: str, *, authenticated: bool) -> None:
        message = (
            f"Access to model {repo_id} is restricted and you are not in the authorized list"
            if authenticated
            else f"Access to model {repo_id} is restricted. You must be authenticated to access it"
        )
        super().__init__(403 if authenticated else 401, message, code="GatedRepo")


class UnauthorizedError(HubError):
    """401 without an error code: a bad token, or none where one is required."""

    def __init__(self, message: str = "Invalid credentials in Authorization header") -> None:
        super().__init__(401, message)


class ForbiddenError(HubError):
    """403: authenticated, but not allowed to do this."""

    def __init__(self, message: str) -> None:
        super().__init__(403, message)


class BadRequestError(HubError):
    """400: a malformed query, path or body."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message)


class UnsupportedMediaTypeError(HubError):
    """415: a body in a format the route does not read."""

    def __init__(self, message: str) -> None:
        super().__init__(415, message)


class ConflictError(HubError):
    """409, e.g. the repository exists (the body carries its `url`)."""

    def __init__(self, message: str, **body: object) -> None:
        super().__init__(409, message, body=body)


class PreconditionFailedError(HubError):
    """412: the commit's `parentCommit` is not the branch head any more."""

    def __init__(self, message: str) -> None:
        super().__init__(412, message)


class NotFoundError(HubError):
    """404 without a Hub error code (an unknown route or LFS object)."""

    def __init__(self, message: str = "Not Found") -> None:
        super().__init__(404, message)


class RangeNotSatisfiableError(HubError):
    """416 with `Content-Range: bytes */SIZE`."""

    def __init__(self, size: int) -> None:
        super().__init__(
            416, "Requested range not satisfiable", headers={"Content-Range": f"bytes */{size}"}
        )
