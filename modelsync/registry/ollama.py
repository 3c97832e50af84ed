"""An Ollama registry (registry.ollama.ai or any other) as a `registry.base.Registry`.

`snapshot("ns/model:tag", tag)` is one request, `GET /v2/<ns>/<model>/manifests/<tag>`: the commit
is the manifest's digest (SHA-256 of its bytes) and the files are its layers, named by
`ollama_format.layout`. A locked digest is asked for as `/manifests/sha256:<hex>` and must hash
to it. Blobs are `GET /v2/<ns>/<model>/blobs/sha256:<hex>`, which the public registry answers
with a redirect to its CDN (followed; the session drops `Authorization` on the way).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from urllib.parse import quote

import pydantic

from modelsync.errors import AuthError, RemoteError
from modelsync.log import get_logger, redact_url
from modelsync.registry.errors import (
    RegistryProtocolError,
    RepoNotFoundError,
    RevisionNotFoundError,
)
from modelsync.registry.hf import range_body
from modelsync.registry.http import Answer, Http
from modelsync.registry.model import RemoteFile, RepoSnapshot
from modelsync.registry.ollama_format import (
    MANIFEST_MEDIA_TYPE,
    MAX_MANIFEST_BYTES,
    OCI_MANIFEST_MEDIA_TYPE,
    OllamaManifest,
    layout,
)
from modelsync.rules import is_prefixed_digest, ollama_blob_url

log = get_logger(__name__)

_ACCEPT = f"{MANIFEST_MEDIA_TYPE}, {OCI_MANIFEST_MEDIA_TYPE}"


@dataclass(frozen=True, slots=True)
class OllamaRegistry:
    """One Ollama registry: its name in models.toml, endpoint and token variable."""

    name: str
    endpoint: str
    http: Http
    token_env: str | None = None
    has_token: bool = False
    _digests: dict[tuple[str, str, str], str] = field(default_factory=dict, repr=False)
    """(repo, manifest digest, path) → blob SHA-256, from the snapshots taken so far."""

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self.http.requests

    async def snapshot(self, source: str, revision: str) -> RepoSnapshot:
        """The manifest of `source` (`ns/model:tag`) at `revision` (the tag, or the digest a
        lock pins): its digest and its layers as files, named after the tag."""
        repo, _, tag = source.partition(":")
        url = f"{self.endpoint}/v2/{repo}/manifests/{quote(revision, safe=':')}"
        answer = await self.http.request(
            "GET", url, headers={"Accept": _ACCEPT}, limit=MAX_MANIFEST_BYTES
        )
        self._check(answer, repo, revision)
        if answer.truncated:
            raise self._garbage(repo, revision, f"larger than {MAX_MANIFEST_BYTES} bytes")
        digest = "sha256:" + hashlib.sha256(answer.body).hexdigest()
        if is_prefixed_digest(revision) and digest != revision:
            raise self._garbage(repo, revision, f"its bytes hash to {digest}")
        try:
            manifest = OllamaManifest.model_validate_json(answer.body)
            files = layout(repo, tag, manifest)
        except pydantic.ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the body"
            raise self._garbage(repo, revision, f"{where}: {first['msg']}") from None
        except ValueError as err:
            raise RepoNotFoundError(
                f"{self.name}:{repo}:{revision} cannot be locked: {err}",
                hint="pick a GGUF tag of the model, or a Hugging Face source",
            ) from None
        if files.unknown:
            log.warning(
                "registry.ollama_layers_skipped",
                registry=self.name,
                repo=repo,
                tag=revision,
                media_types=list(files.unknown),
            )
        for f in files.files:
            self._digests[(repo, digest, f.path)] = f.sha256
        return RepoSnapshot(
            registry=self.name,
            repo=repo,
            revision=revision,
            commit=digest,
            files=tuple(
                sorted(
                    (RemoteFile(f.path, f.size, f.sha256, lfs=True) for f in files.files),
                    key=lambda f: f.path,
                )
            ),
        )

    def url_for(self, repo: str, commit: str, path: str) -> str:
        """The blob URL of a file of a snapshot taken in this run."""
        return ollama_blob_url(self.endpoint, repo, self._digests[(repo, commit, path)])

    async def read_range(self, repo: str, commit: str, path: str, start: int, end: int) -> bytes:
        """Bytes `start..end` (inclusive) of a layer, from its blob URL."""
        answer = await self.http.request(
            "GET",
            self.url_for(repo, commit, path),
            headers={"Range": f"bytes={start}-{end}"},
            limit=end + 1,
        )
        self._check(answer, repo, commit, path=path)
        return range_body(answer, start, end, self.name)

    async def hash_file(self, repo: str, commit: str, file: RemoteFile) -> str:
        """Every layer is named by its digest already; fetched and hashed only if asked."""
        return await self.http.sha256_of(
            self.url_for(repo, commit, file.path),
            file,
            f"{self.name}:{repo}: {file.path}",
            lambda answer: self._check(answer, repo, commit, path=file.path),
        )

    def _check(self, answer: Answer, repo: str, revision: str, *, path: str | None = None) -> None:
        status = answer.status
        if status in (200, 206):
            return
        where = f"{self.name}:{repo}"
        token = self.token_env or "MODELSYNC_REGISTRY_<NAME>_TOKEN"
        if status in (401, 403):
            what = "refused" if self.has_token else "requires a token for"
            raise AuthError(
                f"{self.endpoint} {what} {where} ({status})",
                hint=f"check {token}" if self.has_token else f"set {token}",
            )
        if status == 404 and path is None:
            codes = _error_codes(answer)
            if "NAME_UNKNOWN" in codes:
                raise RepoNotFoundError(
                    f"{where}: the registry at {self.endpoint} has no model {repo}",
                    hint="check the source in models.toml",
                )
            raise RevisionNotFoundError(
                f'{where}: model {repo} has no tag "{revision}" on {self.endpoint} (404)',
                hint="fix the tag in models.toml (see the model's tags on the registry)",
            )
        if status == 404:
            raise RemoteError(
                f"{where}: {path} is in the manifest but its blob is missing (404)",
                hint="the registry is inconsistent; retry later",
            )
        raise RemoteError(
            f"{self.endpoint} answered {status} for {redact_url(answer.url)} "
            f"after {answer.attempts} attempt{'s' if answer.attempts > 1 else ''}",
            hint="the registry is unavailable; safe to retry later",
        )

    def _garbage(self, repo: str, revision: str, detail: str) -> RegistryProtocolError:
        return RegistryProtocolError(
            f"{self.name} ({self.endpoint}) answered an invalid manifest for {repo}:{revision}: "
            f"{detail}",
            hint="the endpoint is not a working Ollama registry; check it in models.toml",
        )


def _error_codes(answer: Answer) -> set[str]:
    """The `code`s of an OCI error body `{"errors": [{"code": …}]}`."""
    try:
        data = json.loads(answer.body)
    except ValueError:
        return set()
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return set()
    return {str(e.get("code")) for e in errors if isinstance(e, dict)}
