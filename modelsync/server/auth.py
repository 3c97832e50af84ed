"""Tokens and who may do what: the tokens file, the Bearer header, visibility, gating, writing.

Tokens never appear in logs or error text: errors name the file and line only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from modelsync.errors import UsageError
from modelsync.server import names
from modelsync.server.hub_errors import (
    ForbiddenError,
    GatedRepoError,
    RepoNotFoundError,
    UnauthorizedError,
)
from modelsync.server.model import Repo

Role = Literal["read", "write"]


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """Who a token stands for: a user, a role and the organisations the user belongs to."""

    user: str
    role: Role
    orgs: tuple[str, ...] = ()

    def owns(self, namespace: str) -> bool:
        """Whether the namespace is the user's own or one of their organisations."""
        return namespace == self.user or namespace in self.orgs


def load_tokens_file(path: Path) -> dict[str, TokenInfo]:
    """Read `USER ROLE TOKEN [ORG,ORG...]` lines; `#` comments and blank lines are skipped.

    Raises `UsageError` naming the file and line (never the token) for a malformed line, an unknown
    role, an invalid user or organisation name, or a token given twice.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot read tokens file {path}: {exc.strerror}", hint="check the path"
        ) from exc
    tokens: dict[str, TokenInfo] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        where = f"{path}:{number}"
        if len(fields) not in (3, 4):
            raise UsageError(
                f"{where}: expected 'USER ROLE TOKEN [ORG,ORG...]', found {len(fields)} fields",
                hint="one token per line, fields separated by spaces",
            )
        user, role, token = fields[:3]
        orgs = tuple(o for o in fields[3].split(",") if o) if len(fields) == 4 else ()
        if role not in ("read", "write"):
            raise UsageError(f"{where}: role must be 'read' or 'write', found {role!r}")
        bad = [n for n in (user, *orgs) if not names.is_name(n)]
        if bad:
            raise UsageError(f"{where}: invalid user or organisation name {bad[0]!r}")
        if token in tokens:
            raise UsageError(f"{where}: this token is already listed on an earlier line")
        tokens[token] = TokenInfo(user=user, role="write" if role == "write" else "read", orgs=orgs)
    return tokens


def identify(authorization: str | None, tokens: Mapping[str, TokenInfo]) -> TokenInfo | None:
    """The caller of an `Authorization` header: `None` if anonymous, a 401 if unknown."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthorizedError()
    info = tokens.get(token.strip())
    if info is None:
        raise UnauthorizedError()
    return info


def can_see(repo: Repo, caller: TokenInfo | None) -> bool:
    """Public repositories are visible to all, private ones only to their owners."""
    return not repo.settings.private or (caller is not None and caller.owns(repo.namespace))


def check_visible(repo: Repo, caller: TokenInfo | None) -> None:
    """`RepoNotFoundError` for a private repository the caller does not own (never reveal it)."""
    if not can_see(repo, caller):
        raise RepoNotFoundError(repo.repo_id)


def can_read(repo: Repo, caller: TokenInfo | None) -> bool:
    """Visibility, then gating: `auto` needs any valid token, `manual` an owner or approved user."""
    if not can_see(repo, caller):
        return False
    gated = repo.settings.gated
    if gated is False:
        return True
    if caller is None:
        return False
    return (
        gated == "auto"
        or caller.owns(repo.namespace)
        or caller.user in repo.settings.approved_users
    )


def check_content_access(repo: Repo, caller: TokenInfo | None) -> None:
    """`RepoNotFoundError` unless visible, `GatedRepoError` unless `can_read`."""
    check_visible(repo, caller)
    if not can_read(repo, caller):
        raise GatedRepoError(repo.repo_id, authenticated=caller is not None)


def check_write(namespace: str, caller: TokenInfo | None) -> TokenInfo:
    """A write token owning the namespace, else 401 (anonymous) or 403."""
    if caller is None:
        raise UnauthorizedError(
            "You must be authenticated to write: send a token with the write role"
        )
    if caller.role != "write":
        raise ForbiddenError(
            "Your token has the read role; writing needs a token with the write role"
        )
    if not caller.owns(namespace):
        raise ForbiddenError(f"You don't have the rights to write under the namespace {namespace}")
    return caller
