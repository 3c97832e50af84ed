"""Plain HTTP(S) files as a `registry.base.Registry`: a URL is its own source, with no commits.

The size comes from HEAD (or a one-byte range), header bytes from Range requests. Their SHA-256
comes from models.toml; `sync` verifies the bytes against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelsync.errors import AuthError, RemoteError
from modelsync.log import redact_url
from modelsync.registry.errors import RegistryProtocolError, RepoNotFoundError
from modelsync.registry.hf import range_body
from modelsync.registry.http import Answer, Http
from modelsync.registry.model import RemoteFile, RepoSnapshot, file_name

_TOTAL = re.compile(r"bytes \d+-\d+/(\d+)")


@dataclass(frozen=True, slots=True)
class UrlFiles:
    """Files addressed by URL, for one registry name (`url`, or a declared `type = "url"`)."""

    name: str
    http: Http
    token_env: str | None = None

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self.http.requests

    async def snapshot(self, url: str, revision: str) -> RepoSnapshot:
        """The one file at `url` with its size; `revision` has no meaning for a URL."""
        size = await self.size(url)
        files = (RemoteFile(file_name(url), size, None),)
        return RepoSnapshot(self.name, url, revision, commit="", files=files)

    async def size(self, url: str) -> int:
        """The file's size: HEAD's Content-Length, else the total of a one-byte range."""
        answer = await self.http.request("HEAD", url)
        if answer.status == 200 and answer.headers.get("Content-Length", "").isdigit():
            return int(answer.headers["Content-Length"])
        answer = await self.http.request("GET", url, headers={"Range": "bytes=0-0"}, limit=1)
        self._check(answer, url)
        match = _TOTAL.fullmatch(answer.headers.get("Content-Range", "").strip())
        if answer.status == 206 and match:
            return int(match.group(1))
        raise RegistryProtocolError(
            f"{redact_url(url)} gives no size (no Content-Length, no Range support)",
            hint="serve the file from a host that sends Content-Length",
        )

    async def read_range(self, url: str, commit: str, path: str, start: int, end: int) -> bytes:
        """Bytes `start..end` (inclusive) of the file at `url`."""
        answer = await self.http.request(
            "GET", url, headers={"Range": f"bytes={start}-{end}"}, limit=end + 1
        )
        self._check(answer, url)
        return range_body(answer, start, end, self.name)

    async def hash_file(self, url: str, commit: str, file: RemoteFile) -> str:
        """SHA-256 of the (small) file at `url`, fetched once."""
        return await self.http.sha256_of(
            url, file, redact_url(url), lambda answer: self._check(answer, url)
        )

    def url_for(self, url: str, commit: str, path: str) -> str:
        """The URL itself."""
        return url

    def _check(self, answer: Answer, url: str) -> None:
        if answer.status in (200, 206):
            return
        shown = redact_url(url)
        if answer.status in (404, 410):
            raise RepoNotFoundError(
                f"{shown} does not exist ({answer.status})", hint="fix the source in models.toml"
            )
        if answer.status in (401, 403):
            token = self.token_env or "MODELSYNC_REGISTRY_<NAME>_TOKEN for a declared url registry"
            raise AuthError(f"{shown} refused access ({answer.status})", hint=f"set {token}")
        raise RemoteError(
            f"{shown} answered {answer.status} after {answer.attempts} attempts",
            hint="the host is unavailable; safe to retry later",
        )
