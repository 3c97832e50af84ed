"""The upload path `publish` needs: preupload, LFS batch, PUT, verify and the NDJSON commit."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiohttp import web

from modelsync import digest
from modelsync.digest import CHUNK
from modelsync.log import get_logger
from modelsync.server import bodies, gitobj, names
from modelsync.server.auth import TokenInfo, can_read, check_write
from modelsync.server.blobs import Hasher, SizeMismatchError
from modelsync.server.context import context, visible_repo
from modelsync.server.counters import Counters
from modelsync.server.hub_errors import BadRequestError, ForbiddenError, NotFoundError
from modelsync.server.model import (
    AddBlob,
    AddBytes,
    DeleteFolder,
    DeletePath,
    Event,
    Operation,
    Repo,
)
from modelsync.server.repos import RepoStore
from modelsync.server.responses import json_answer

log = get_logger(__name__)

LFS_CONTENT_TYPE = "application/vnd.git-lfs+json"
UPLOAD_PATH = "/lfs/upload/{oid}"
MAX_COMMIT_LINE = 64 * 1024 * 1024
"""One NDJSON line carries one regular file in base64; regular files stay under 10 MiB."""


@dataclass(frozen=True, slots=True)
class CommitHeader:
    """The first line of a commit: title, description, and the expected parent."""

    summary: str
    description: str
    parent: str | None


def _field(value: Mapping[str, object], name: str) -> str:
    item = value.get(name)
    if not isinstance(item, str):
        raise BadRequestError(f"commit line: '{name}' must be a string")
    return item


def parse_commit_line(line: object) -> CommitHeader | Operation:
    """One decoded NDJSON line of a commit as a header or an operation (pure).

    `file` content is decoded from base64; `lfsFile` becomes an `AddBlob` of an LFS object that
    must already be stored (checked when the commit is applied).
    """
    if not isinstance(line, dict) or not isinstance(line.get("value"), dict):
        raise BadRequestError('commit line: expected {"key": ..., "value": {...}}')
    key, value = line.get("key"), line["value"]
    if key == "header":
        parent = value.get("parentCommit")
        if parent is not None and not (isinstance(parent, str) and digest.is_commit_id(parent)):
            raise BadRequestError("commit header: 'parentCommit' must be a 40-hex commit id")
        description = value.get("description") or ""
        return CommitHeader(_field(value, "summary"), str(description), parent)
    path = _field(value, "path")
    if key == "file":
        if value.get("encoding", "base64") != "base64":
            raise BadRequestError(f"commit line for {path}: only base64 encoding is supported")
        try:
            data = base64.b64decode(_field(value, "content"), validate=True)
        except binascii.Error as exc:
            raise BadRequestError(f"commit line for {path}: content is not valid base64") from exc
        return AddBytes(path, data)
    if key == "lfsFile":
        oid = _field(value, "oid")
        size = value.get("size")
        if value.get("algo", "sha256") != "sha256" or not digest.is_sha256(oid):
            raise BadRequestError(f"commit line for {path}: 'oid' must be a sha256")
        if size is not None and not isinstance(size, int):
            raise BadRequestError(f"commit line for {path}: 'size' must be an integer")
        return AddBlob(path, oid, lfs=True, size=size)
    if key == "deletedFile":
        return DeletePath(path)
    if key == "deletedFolder":
        return DeleteFolder(path)
    raise BadRequestError(f"commit line: unknown key {key!r}")


def _parse_line(raw: bytes) -> CommitHeader | Operation:
    """One raw NDJSON line (up to `MAX_COMMIT_LINE`, base64 included) as a header or operation."""
    return parse_commit_line(bodies.loads(raw, what="commit body: a line"))


async def _lines(request: web.Request) -> AsyncIterator[bytes]:
    """The body's lines, holding one line in memory and copying each byte once."""
    parts: list[bytes] = []
    held = 0
    async for chunk in request.content.iter_chunked(CHUNK):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            parts.append(chunk[start:end])
            yield b"".join(parts)
            parts, held, start = [], 0, end + 1
        parts.append(chunk[start:])
        held += len(chunk) - start
        if held > MAX_COMMIT_LINE:
            raise BadRequestError("commit line too long: upload large files through LFS")
    yield b"".join(parts)


async def commit(request: web.Request) -> web.Response:
    """`POST /api/models/{repo}/commit/{rev}` (NDJSON); a no-op answers the unchanged head."""
    ctx = context(request)
    store = ctx.writable
    repo, who = visible_repo(request)
    writer = check_write(repo.namespace, who)
    if request.query.get("create_pr") not in (None, "", "0", "false"):
        raise BadRequestError("Pull requests are not supported by this server")
    header: CommitHeader | None = None
    operations: list[Operation] = []
    async for raw in _lines(request):
        if not raw.strip():
            continue
        parsed = await bodies.off_loop(_parse_line, raw)
        if isinstance(parsed, CommitHeader):
            header = parsed
        elif header is None:
            raise BadRequestError("commit body: the first line must be the header")
        elif isinstance(parsed, AddBlob):  # an lfsFile line: bytes named by digest alone
            _check_lfs_use(store, repo, writer, parsed)
            operations.append(parsed)
        elif isinstance(parsed, AddBytes):  # store now so only one file is in memory at a time
            hashed = await asyncio.to_thread(store.blobs.put_bytes, parsed.data)
            store.remember(hashed)
            lfs = gitobj.is_lfs(parsed.path, hashed.size, hashed.head)
            operations.append(AddBlob(parsed.path, hashed.sha256, lfs=lfs))
        else:
            operations.append(parsed)
    if header is None or not header.summary:
        raise BadRequestError("commit body: a header with a non-empty summary is required")
    result = await asyncio.to_thread(
        store.commit,
        repo.repo_id,
        request.match_info["rev"],
        operations,
        header.summary,
        message=header.description,
        parent=header.parent,
        author=writer.user,
    )
    return json_answer(
        {
            "success": True,
            "commitOid": result.id,
            "commitUrl": f"{ctx.endpoint}/{repo.repo_id}/commit/{result.id}",
            "hookOutput": "",
        }
    )


def _check_lfs_use(store: RepoStore, repo: Repo, writer: TokenInfo, op: AddBlob) -> None:
    """Refuse an LFS object neither uploaded to this repo nor held by one the writer can read.

    The answer is the same whether the object is stored elsewhere or nowhere (no oracle).
    """
    if store.lfs_usable(repo.repo_id, op.sha256):
        return
    if any(can_read(holder, writer) for holder in store.lfs_holders(op.sha256)):
        return
    raise BadRequestError(
        f"LFS object {op.sha256} for {op.path} was not uploaded to {repo.repo_id}: "
        "upload it through the LFS batch API first"
    )


async def preupload(request: web.Request) -> web.Response:
    """`POST /api/models/{repo}/preupload/{rev}`: upload mode, and the oid already there."""
    store = context(request).writable
    repo, who = visible_repo(request)
    check_write(repo.namespace, who)
    head = store.head(repo.repo_id, request.match_info["rev"])
    body = await bodies.json_object(request)
    files = body.get("files")
    if not isinstance(files, list):
        raise BadRequestError("'files' must be a list")
    answers = []
    for item in files:
        if not isinstance(item, dict):
            raise BadRequestError("each of 'files' must be an object")
        path, size, sample = item.get("path"), item.get("size"), item.get("sample", "")
        if not isinstance(path, str) or not isinstance(size, int) or not isinstance(sample, str):
            raise BadRequestError(
                "each file needs 'path' (string), 'size' (integer), 'sample' (base64)"
            )
        if not names.is_repo_path(path):
            raise BadRequestError(f"Invalid path in repo: {path!r}")
        try:
            head_bytes = base64.b64decode(sample, validate=True)
        except binascii.Error as exc:
            raise BadRequestError(f"'sample' of {path} is not valid base64") from exc
        lfs = gitobj.is_lfs(path, size, head_bytes)
        existing = head.files.get(path)
        oid = None if existing is None else existing.sha256 if lfs else existing.git_sha1
        answers.append(
            {
                "path": path,
                "uploadMode": "lfs" if lfs else "regular",
                "shouldIgnore": False,
                "oid": oid,
            }
        )
    return json_answer({"files": answers, "commitOid": head.id})


def _lfs_repo(request: web.Request) -> tuple[Repo, TokenInfo]:
    repo, who = visible_repo(request)
    return repo, check_write(repo.namespace, who)


def _batch_object(request: web.Request, repo: Repo, item: object) -> dict[str, object]:
    ctx = context(request)
    store = ctx.writable
    oid = item.get("oid") if isinstance(item, dict) else None
    size = item.get("size") if isinstance(item, dict) else None
    if (
        not isinstance(oid, str)
        or not digest.is_sha256(oid)
        or not isinstance(size, int)
        or size < 0
    ):
        return {
            "oid": str(oid),
            "size": size if isinstance(size, int) else 0,
            "error": {
                "code": 422,
                "message": "oid must be a sha256 and size a non-negative integer",
            },
        }
    if store.lfs_usable(repo.repo_id, oid):  # per repo: stored elsewhere is not stored here
        if store.content_size(oid) == size:
            return {"oid": oid, "size": size}
        return {"oid": oid, "size": size, "error": {"code": 422, "message": "size mismatch"}}
    upload_base = ctx.cdn_endpoint or ctx.endpoint
    params = {"repo": repo.repo_id, "size": str(size)}
    return {
        "oid": oid,
        "size": size,
        "authenticated": True,
        "actions": {
            "upload": {"href": ctx.signed_url(upload_base, UPLOAD_PATH.format(oid=oid), params)},
            "verify": {"href": f"{ctx.endpoint}/{repo.repo_id}.git/info/lfs/objects/verify"},
        },
    }


async def lfs_batch(request: web.Request) -> web.Response:
    """`POST /{repo}.git/info/lfs/objects/batch` (basic transfer, uploads only)."""
    repo, _ = _lfs_repo(request)
    body = await bodies.json_object(request)
    if body.get("operation") != "upload":
        raise BadRequestError("Only the upload operation is supported; download through /resolve")
    objects = body.get("objects")
    if not isinstance(objects, list):
        raise BadRequestError("'objects' must be a list")
    answer = {
        "transfer": "basic",
        "hash_algo": "sha256",
        "objects": [_batch_object(request, repo, item) for item in objects],
    }
    return json_answer(answer, content_type=LFS_CONTENT_TYPE)


async def lfs_upload(request: web.Request) -> web.Response:
    """`PUT /lfs/upload/{oid}?repo=&size=&exp=&sig=`: stored only if SHA-256 and size match."""
    ctx = context(request)
    store = ctx.writable
    if not ctx.signature_ok(request):
        raise ForbiddenError("Invalid or expired signature")
    oid, size, repo_id = (
        request.match_info["oid"],
        int(request.query["size"]),
        request.query["repo"],
    )
    # Hashed even when the blob is stored already: the upload proves the writer holds the bytes,
    # which is what makes the object usable in this repository.
    hasher = Hasher(size)
    with store.blobs.temp_file() as (temp, temp_path):
        try:
            async for chunk in request.content.iter_chunked(CHUNK):
                hasher.update(chunk)
                temp.write(chunk)  # page-cache writes are cheap; the fsync runs off the loop
            hashed = hasher.result()
        except SizeMismatchError as exc:
            _rejected(store.counters, repo_id, oid, str(exc))
            raise BadRequestError(f"Upload refused: {exc}") from exc
        if hashed.sha256 != oid:
            _rejected(store.counters, repo_id, oid, "sha256 mismatch")
            raise BadRequestError(
                f"Upload refused: the content's sha256 is {hashed.sha256}, not {oid}"
            )
        await asyncio.to_thread(store.blobs.adopt, temp, temp_path, oid)
    await asyncio.to_thread(store.record_upload, repo_id, oid)
    store.remember(hashed)
    store.counters.record_event(Event("lfs.stored", repo_id, {"oid": oid, "size": size}))
    log.info("lfs.stored", repo=repo_id, oid=oid, size=size)
    return web.Response(status=200)


def _rejected(counters: Counters, repo_id: str, oid: str, reason: str) -> None:
    counters.record_event(Event("lfs.rejected", repo_id, {"oid": oid, "reason": reason}))
    log.warning("lfs.rejected", repo=repo_id, oid=oid, reason=reason)


async def lfs_verify(request: web.Request) -> web.Response:
    """`POST /{repo}.git/info/lfs/objects/verify` (Bearer): 404 unless uploaded to this repo."""
    store = context(request).writable
    repo, _ = _lfs_repo(request)
    body = await bodies.json_object(request)
    oid, size = body.get("oid"), body.get("size")
    if (
        not isinstance(oid, str)
        or not digest.is_sha256(oid)
        or not store.lfs_usable(repo.repo_id, oid)
        or store.content_size(oid) != size
    ):
        raise NotFoundError("Object not found")
    return json_answer({}, content_type=LFS_CONTENT_TYPE)


def add_routes(app: web.Application) -> None:
    """Register the upload routes on the main app."""
    repo = "/api/models/{ns}/{name}"
    app.router.add_post(repo + "/preupload/{rev}", preupload, name="preupload")
    app.router.add_post(repo + "/commit/{rev}", commit, name="commit")
    app.router.add_post("/{ns}/{name}.git/info/lfs/objects/batch", lfs_batch, name="lfs_batch")
    app.router.add_post("/{ns}/{name}.git/info/lfs/objects/verify", lfs_verify, name="lfs_verify")
    add_upload_route(app)


def add_upload_route(app: web.Application) -> None:
    """Register the signed LFS PUT route (on the CDN app when there is one, else the main app)."""
    app.router.add_put(UPLOAD_PATH, lfs_upload, name="lfs_upload")
