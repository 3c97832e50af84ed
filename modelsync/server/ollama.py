"""An Ollama registry over an Ollama models folder: what `ollama pull` asks of registry.ollama.ai.

The folder has Ollama's own layout (`manifests/<host>/<ns>/<model>/<tag>`, `blobs/sha256-<hex>`),
so a machine's `~/.ollama/models` can be served as it is. Routes:

    GET/HEAD /v2/{ns}/{model}/manifests/{tag | sha256:<hex>}   the manifest's bytes as stored
    GET/HEAD /v2/{ns}/{model}/blobs/sha256:<hex>               a 307 to the CDN origin's signed
                                                               URL (or the bytes, without one)
    GET/HEAD /ollama/blobs/{digest}                           the CDN origin: signed URLs only

A blob is served only for a model whose manifest names it (the registry's own isolation rule),
and with `ollama_private` only to a caller with a valid token (the CDN checks its signature);
the bytes are served as they are on disk, unverified, like any registry that went wrong.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from aiohttp import web

from modelsync.rules import is_ollama_repo, is_ollama_tag, is_prefixed_digest
from modelsync.server.context import HubContext, caller, context
from modelsync.server.hub_errors import ForbiddenError, HubError, UnauthorizedError
from modelsync.server.resolve import send_blob

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CDN_BLOB_PATH = "/ollama/blobs/{digest}"
MAX_MANIFEST_BYTES = 4 << 20


def _unknown(code: str, message: str) -> HubError:
    """A 404 with the OCI error body `{"errors": [{"code", "message"}]}`."""
    return HubError(404, message, code=code, body={"errors": [{"code": code, "message": message}]})


def _root(ctx: HubContext) -> Path:
    root = ctx.config.ollama_root
    if root is None:
        raise _unknown("NAME_UNKNOWN", "this server serves no Ollama models")
    return root


def _repo(request: web.Request) -> str:
    """The URL's `ns/model`, once the caller may read (any valid token, when private)."""
    if caller(request) is None and context(request).config.ollama_private:
        raise UnauthorizedError()
    repo = f"{request.match_info['ns']}/{request.match_info['model']}"
    if not is_ollama_repo(repo):
        raise _unknown("NAME_UNKNOWN", f"repository name not known to registry: {repo}")
    return repo


def _manifests(root: Path, repo: str) -> dict[str, bytes]:
    """Tag → manifest bytes of `repo`, from every host folder (first host in name order wins)."""
    found: dict[str, bytes] = {}
    for host in sorted((root / "manifests").glob("*")):
        folder = host / repo
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            usable = path.is_file() and path.stat().st_size <= MAX_MANIFEST_BYTES
            if usable and is_ollama_tag(path.name) and path.name not in found:
                found[path.name] = path.read_bytes()
    return found


def _digests_of(manifest: bytes) -> set[str]:
    """The config and layer digests a manifest names (nothing for one that is not JSON)."""
    try:
        data = json.loads(manifest)
    except ValueError:
        return set()
    if not isinstance(data, dict):
        return set()
    blobs = [data.get("config"), *(data.get("layers") or [])]
    return {str(b.get("digest")) for b in blobs if isinstance(b, dict)}


async def manifest(request: web.Request) -> web.Response:
    """The manifest of a tag, or of a digest (any of the model's manifests hashing to it)."""
    repo = _repo(request)
    ref = request.match_info["ref"]
    manifests = _manifests(_root(context(request)), repo)
    if not manifests:
        raise _unknown("NAME_UNKNOWN", f"repository name not known to registry: {repo}")
    if is_prefixed_digest(ref):
        body = next(
            (m for m in manifests.values() if f"sha256:{hashlib.sha256(m).hexdigest()}" == ref),
            None,
        )
    else:
        body = manifests.get(ref)
    if body is None:
        raise _unknown("MANIFEST_UNKNOWN", f"manifest unknown: {repo}:{ref}")
    digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
    headers = {"Docker-Content-Digest": digest, "Content-Type": MANIFEST_MEDIA_TYPE}
    return web.Response(body=body, headers=headers)


async def blob(request: web.Request) -> web.StreamResponse:
    """A blob a manifest of the model names: a redirect to the CDN, or its bytes."""
    ctx = context(request)
    repo = _repo(request)
    digest = request.match_info["digest"]
    manifests = _manifests(_root(ctx), repo)
    if not is_prefixed_digest(digest) or not any(
        digest in _digests_of(m) for m in manifests.values()
    ):
        raise _unknown("BLOB_UNKNOWN", f"blob unknown to registry: {digest}")
    if ctx.cdn_endpoint is not None:
        path = CDN_BLOB_PATH.format(digest=digest.replace(":", "-"))
        location = ctx.signed_url(ctx.cdn_endpoint, path, {"repo": repo})
        return web.Response(status=307, headers={"Location": location})
    return await _send(request, ctx, repo, digest.replace(":", "-"))


async def cdn_blob(request: web.Request) -> web.StreamResponse:
    """The CDN origin's answer to a signed blob URL."""
    ctx = context(request)
    if not ctx.signature_ok(request):
        raise ForbiddenError("Invalid or expired signature")
    name = request.match_info["digest"]
    if not is_prefixed_digest(name.replace("-", ":", 1)):
        raise _unknown("BLOB_UNKNOWN", "blob unknown")
    return await _send(request, ctx, request.query.get("repo", ""), name)


async def _send(request: web.Request, ctx: HubContext, repo: str, name: str) -> web.StreamResponse:
    path = _root(ctx) / "blobs" / name
    if not path.is_file():
        raise _unknown("BLOB_UNKNOWN", f"blob unknown to registry: {name}")
    headers = {"Accept-Ranges": "bytes", "Docker-Content-Digest": name.replace("-", ":", 1)}
    counters = ctx.store.counters
    return await send_blob(
        request, path, path.stat().st_size, headers, counters=counters, repo_id=repo, path=name
    )


def add_routes(app: web.Application) -> None:
    """Register the registry routes (GET answers HEAD too)."""
    app.router.add_get("/v2/{ns}/{model}/manifests/{ref}", manifest, name="ollama_manifest")
    app.router.add_get("/v2/{ns}/{model}/blobs/{digest}", blob, name="ollama_blob")


def add_cdn_routes(app: web.Application) -> None:
    """Register the CDN origin's blob route."""
    app.router.add_get(CDN_BLOB_PATH, cdn_blob, name="ollama_cdn_blob")
