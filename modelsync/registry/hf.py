"""The Hugging Face Hub API (any Hub-compatible endpoint) as `RepoSnapshot`s and byte ranges.

One request resolves a revision and lists every file with size and LFS SHA-256:
`GET /api/models/{repo}/revision/{rev}?blobs=true` (notes/hub-protocol.md section 2–3). Only if
that answer lacks sizes does the paginated tree (`/tree/{commit}?recursive=true`) follow. GGUF
headers come from `GET /{repo}/resolve/{commit}/{path}` with `Range`; non-LFS files (no SHA-256
in any listing) are fetched once and hashed. HTTP answers map to the error tree here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar
from urllib.parse import quote

import pydantic

from modelsync.digest import is_commit_id, is_sha256
from modelsync.errors import AuthError, RemoteError
from modelsync.log import redact_url
from modelsync.registry.errors import (
    RegistryProtocolError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from modelsync.registry.http import Answer, Http
from modelsync.registry.model import RemoteFile, RepoSnapshot, check_path
from modelsync.rules import hub_file_url

MAX_TREE_PAGES = 1000
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


class _Lfs(pydantic.BaseModel):
    sha256: str
    size: int = pydantic.Field(ge=0)


class _Sibling(pydantic.BaseModel):
    rfilename: str
    size: int | None = pydantic.Field(default=None, ge=0)
    lfs: _Lfs | None = None


class _Info(pydantic.BaseModel):
    id: str
    sha: str
    siblings: list[_Sibling] | None = None
    gated: bool | str = False
    private: bool = False
    gguf: dict[str, Any] | None = None
    last_modified: object = pydantic.Field(default=None, alias="lastModified")


class _TreeLfs(pydantic.BaseModel):
    oid: str
    size: int = pydantic.Field(ge=0)


class _TreeEntry(pydantic.BaseModel):
    type: str
    path: str
    size: int = pydantic.Field(default=0, ge=0)
    lfs: _TreeLfs | None = None


_M = TypeVar("_M", bound=pydantic.BaseModel)
_TREE = pydantic.TypeAdapter(list[_TreeEntry])


@dataclass(frozen=True, slots=True)
class HubRegistry:
    """One Hub-compatible registry (a `registry.base.Registry`): its name in models.toml,
    endpoint and token variable."""

    name: str
    endpoint: str
    http: Http
    token_env: str | None = None
    has_token: bool = False

    def _api(self, repo: str, *tail: str) -> str:
        return "/".join((self.endpoint, "api/models", repo, *tail))

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self.http.requests

    def url_for(self, repo: str, commit: str, path: str) -> str:
        """The download URL of a file at a commit."""
        return hub_file_url(self.endpoint, repo, commit, path)

    async def snapshot(self, repo: str, revision: str) -> RepoSnapshot:
        """Resolve `revision` to a commit and list its files (one request where the Hub allows)."""
        url = self._api(repo, "revision", quote(revision, safe=""))
        answer = await self.http.request("GET", url, params={"blobs": "true"})
        self._check(answer, repo, revision=revision)
        info = self._parse(answer, _Info)
        if not is_commit_id(info.sha):
            raise self._garbage(answer, f"'sha' is not a 40-hex commit id: {info.sha[:60]!r}")
        siblings = info.siblings
        if siblings is not None and all(s.size is not None for s in siblings):
            files = [self._sibling(repo, s, answer) for s in siblings]
        else:
            files = await self._tree(repo, info.sha)
        paths = [f.path for f in files]
        if len(set(paths)) != len(paths):
            raise self._garbage(answer, "the listing names a file twice")
        return RepoSnapshot(
            registry=self.name,
            repo=repo,
            revision=revision,
            commit=info.sha,
            files=tuple(sorted(files, key=lambda f: f.path)),
            gated=info.gated not in (False, "false", ""),
            private=info.private,
            gguf=MappingProxyType(dict(info.gguf or {})),
            date=_date(info.last_modified),
        )

    def _sibling(self, repo: str, sibling: _Sibling, answer: Answer) -> RemoteFile:
        path = check_path(self.name, repo, sibling.rfilename)
        assert sibling.size is not None
        if sibling.lfs is None:
            return RemoteFile(path, sibling.size, None, lfs=False)
        digest = sibling.lfs.sha256.lower()
        if not is_sha256(digest) or sibling.lfs.size != sibling.size:
            raise self._garbage(answer, f"bad LFS metadata for {path!r}")
        return RemoteFile(path, sibling.size, digest, lfs=True)

    async def _tree(self, repo: str, commit: str) -> list[RemoteFile]:
        url: str | None = self._api(repo, "tree", commit)
        params: Mapping[str, str] | None = {"recursive": "true", "expand": "false"}
        files: list[RemoteFile] = []
        for _ in range(MAX_TREE_PAGES):
            if url is None:
                return files
            answer = await self.http.request("GET", url, params=params)
            self._check(answer, repo, revision=commit)
            for entry in self._parse_tree(answer):
                if entry.type != "file":
                    continue
                path = check_path(self.name, repo, entry.path)
                if entry.lfs is None:
                    files.append(RemoteFile(path, entry.size, None, lfs=False))
                    continue
                digest = entry.lfs.oid.lower()
                if not is_sha256(digest) or entry.lfs.size != entry.size:
                    raise self._garbage(answer, f"bad LFS metadata for {path!r}")
                files.append(RemoteFile(path, entry.size, digest, lfs=True))
            url, params = next_link(answer.headers.get("Link", "")), None
        raise self._garbage(answer, f"more than {MAX_TREE_PAGES} pages of listing")

    async def read_range(self, repo: str, commit: str, path: str, start: int, end: int) -> bytes:
        """Bytes `start..end` (inclusive) of a file; shorter only at the end of the file."""
        url = self.url_for(repo, commit, path)
        answer = await self.http.request(
            "GET", url, headers={"Range": f"bytes={start}-{end}"}, limit=end + 1
        )
        self._check(answer, repo, revision=commit, path=path)
        return range_body(answer, start, end, self.name)

    async def hash_file(self, repo: str, commit: str, file: RemoteFile) -> str:
        """SHA-256 of a small non-LFS file, fetched once; its size must match the listing."""
        return await self.http.sha256_of(
            self.url_for(repo, commit, file.path),
            file,
            f"{self.name}:{repo}: {file.path}",
            lambda answer: self._check(answer, repo, revision=commit, path=file.path),
        )

    # ---- errors --------------------------------------------------------------------------

    def _check(self, answer: Answer, repo: str, *, revision: str, path: str | None = None) -> None:
        status = answer.status
        if status in (200, 206):
            return
        code = answer.headers.get("X-Error-Code", "")
        where = f"{self.name}:{repo}"
        token = self.token_env or "the registry's token-env variable"
        if code == "GatedRepo" or (status == 403 and "gated" in _message(answer).lower()):
            if self.has_token:
                raise AuthError(
                    f"{where} is gated and {token} has no access to it",
                    hint=f"request access at {self.endpoint}/{repo}, then run lock again",
                )
            raise AuthError(
                f"{where} is gated: it needs an access token",
                hint=f"set {token} for an account that has accepted the repository's terms",
            )
        if code == "RevisionNotFound":
            raise RevisionNotFoundError(
                f'{where} has no revision "{revision}"',
                hint="fix revision in models.toml (a branch, tag or 40-hex commit)",
            )
        if code == "RepoNotFound" or (status == 404 and not code and path is None):
            hint = "check the source in models.toml"
            if not self.has_token:
                hint += f"; if the repository is private, set {token}"
            raise RepoNotFoundError(
                f"{where} does not exist (the registry at {self.endpoint} answered {status})",
                hint=hint,
            )
        if code == "EntryNotFound" or status == 404:
            raise RemoteError(
                f"{where}: {path} is listed but cannot be downloaded (404)",
                hint="the registry is inconsistent; retry later",
            )
        if status == 401:
            if self.has_token:
                raise AuthError(
                    f"{self.endpoint} refused {token} (401) for {where}",
                    hint=f"check or renew {token}",
                )
            raise AuthError(
                f"{self.endpoint} requires an access token for {where} (401)",
                hint=f"set {token}",
            )
        if status == 403:
            raise AuthError(
                f"{self.endpoint} refused access to {where} (403): {_message(answer)}",
                hint=f"check that {token} may read it",
            )
        raise RemoteError(
            f"{self.endpoint} answered {status} for {redact_url(answer.url)} "
            f"after {answer.attempts} attempt{'s' if answer.attempts > 1 else ''}",
            hint="the registry is unavailable; safe to retry later",
        )

    def _parse(self, answer: Answer, model: type[_M]) -> _M:
        try:
            return model.model_validate_json(answer.body)
        except pydantic.ValidationError as err:
            raise self._garbage(answer, _first_error(err)) from None

    def _parse_tree(self, answer: Answer) -> list[_TreeEntry]:
        try:
            return _TREE.validate_json(answer.body)
        except pydantic.ValidationError as err:
            raise self._garbage(answer, _first_error(err)) from None

    def _garbage(self, answer: Answer, detail: str) -> RegistryProtocolError:
        return RegistryProtocolError(
            f"{self.name} ({self.endpoint}) answered {redact_url(answer.url)} with an invalid "
            f"listing: {detail}",
            hint="the endpoint is not a working Hub-compatible registry; check it in models.toml",
        )


def range_body(answer: Answer, start: int, end: int, registry: str) -> bytes:
    """The bytes of a ranged answer: a 206 must start where asked; a 200 is cut to the window."""
    if answer.status == 206:
        content_range = answer.headers.get("Content-Range", "")
        match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", content_range.strip())
        if match is None or int(match.group(1)) != start:
            raise RegistryProtocolError(
                f"{registry} answered a range request for bytes {start}-{end} with "
                f"Content-Range {content_range!r}",
                hint="the server mishandles Range; retry later or use another endpoint",
            )
        return answer.body[: end - start + 1]
    return answer.body[start : end + 1]


def _date(value: object) -> datetime | None:
    """An ISO 8601 date with its zone (`2026-11-30T10:00:00.000Z`); anything else is unknown,
    never an error: the date only informs `outdated`."""
    if not isinstance(value, str):
        return None
    try:
        date = datetime.fromisoformat(value)
    except ValueError:
        return None
    return date if date.tzinfo is not None else None


def next_link(header: str) -> str | None:
    """The URL of a `Link: <URL>; rel="next"` header, None without one."""
    match = _LINK_NEXT.search(header)
    return match.group(1) if match else None


def _message(answer: Answer) -> str:
    message = answer.headers.get("X-Error-Message")
    if message:
        return message
    try:
        data = json.loads(answer.body)
    except ValueError:
        return ""
    return str(data.get("error", "")) if isinstance(data, dict) else ""


def _first_error(err: pydantic.ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the body"
    return f"{where}: {first['msg']}"
