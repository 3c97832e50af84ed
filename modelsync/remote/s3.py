"""One S3-compatible remote through boto3 (the optional extra `s3`): presigned GETs for sync,
a listing and uploads for push. botocore's errors become ours here, naming the remote and the
fix; only the error code enters a message (S3 error bodies can echo request details).

Credentials come only from boto3's standard chain: `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`
(/`AWS_SESSION_TOKEN`), `AWS_PROFILE` or the remote's `profile`, the shared files, the
instance's role. Downloads do not go through boto3: a GET URL is signed locally (no request)
and handed to the download engine, so remote bytes get ranges, resume, the speed guard and the
digest gate like any other (fetch/download.py); the URL's query is its signature and is never
logged (log.redact_url).

Uploads: a blob up to one part goes in one PUT carrying its SHA-256 (`ChecksumSHA256`: the
store's name of the blob, so S3 itself refuses other bytes); a larger one as a multipart upload
with a SHA-256 per part, parts in parallel, visible under its key only once complete. A push
killed mid-way leaves the upload open: the next push finds it (ListMultipartUploads), keeps
the parts whose size and checksum match this file's (ListParts) and sends only the rest.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelsync.credentials import may_carry_token
from modelsync.digest import CHUNK, sha256_file
from modelsync.errors import AuthError, IntegrityError, ModelsyncError, RemoteError, UsageError
from modelsync.fetch.sources import Mirror, MirrorFinder
from modelsync.log import get_logger
from modelsync.manifest.model import RemoteRef
from modelsync.rules import blob_key, is_sha256

if TYPE_CHECKING:
    from botocore.client import BaseClient

log = get_logger(__name__)

MAX_PARTS = 10_000  # S3's limit per multipart upload
MIN_PART = 5 << 20  # S3's smallest part (but the last)
DEFAULT_PART_SIZE = 64 << 20
PRESIGN_SECONDS = 6 * 3600  # a resumed multi-GiB download must not outlive its URL
DEFAULT_REGION = "us-east-1"
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "InvalidClientTokenId",
        "AllAccessDisabled",
        "403",
        "401",
    }
)
CREDENTIALS_FIX = (
    "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) with access to the "
    'bucket, or set profile = "<name>" in [remotes.{name}]'
)


def fix_for(remote: RemoteRef) -> str:
    """How to give `remote` working credentials."""
    return CREDENTIALS_FIX.format(name=remote.name)


@dataclass(frozen=True, slots=True)
class Uploaded:
    """What uploading one blob took: bytes sent now, and parts an earlier push had sent."""

    sent: int
    parts_reused: int = 0
    multipart: bool = False


class S3Remote:
    """One `[remotes.NAME]` of type s3, with its boto3 client."""

    def __init__(self, ref: RemoteRef, client: BaseClient) -> None:
        self.ref = ref
        self.client = client

    def key(self, sha256: str) -> str:
        """`<prefix>/sha256/<hex>`."""
        return blob_key(self.ref.prefix, sha256)

    def presign_get(self, sha256: str) -> str:
        """A GET URL for the blob, signed locally (no request is made)."""
        try:
            url: str = self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.ref.bucket, "Key": self.key(sha256)},
                ExpiresIn=PRESIGN_SECONDS,
            )
        except Exception as exc:
            raise self.error(exc, "sign a download") from exc
        return url

    def listing(self) -> dict[str, int]:
        """Digest → object size of every blob under the prefix: one request per 1000 objects,
        cheaper than a HEAD per blob for any lock of more than a few files."""
        start = self.key("0" * 64).removesuffix("0" * 64)
        found: dict[str, int] = {}
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.ref.bucket, Prefix=start
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    name = str(item["Key"])[len(start) :]
                    if is_sha256(name):
                        found[name] = int(item["Size"])
        except Exception as exc:
            raise self.error(exc, "list the blobs") from exc
        return found

    def hashes_to(self, sha256: str) -> bool:
        """Whether the object under the blob's key hashes to its name (every byte is read)."""
        digest = hashlib.sha256()
        try:
            body = self.client.get_object(Bucket=self.ref.bucket, Key=self.key(sha256))["Body"]
            for chunk in body.iter_chunks(1 << 20):
                digest.update(chunk)
        except Exception as exc:
            raise self.error(exc, f"read sha256 {sha256}") from exc
        return digest.hexdigest() == sha256

    def upload(
        self,
        path: Path,
        sha256: str,
        size: int,
        *,
        part_size: int,
        pool: Executor,
        sent: Callable[[int], None] = lambda _n: None,
    ) -> Uploaded:
        """Upload the blob at `path` under its key (see the module docstring); `sent` is told
        each part's bytes as they go."""
        part_size = max(part_size, -(-size // MAX_PARTS))
        try:
            if size <= part_size:
                _check(path, sha256, sha256_file(path))  # at most one part: cheap to read twice
                with path.open("rb") as body:
                    self.client.put_object(
                        Bucket=self.ref.bucket,
                        Key=self.key(sha256),
                        Body=body,
                        ContentLength=size,
                        ChecksumSHA256=_b64(bytes.fromhex(sha256)),
                    )
                sent(size)
                return Uploaded(size)
            return self._multipart(path, sha256, size, part_size=part_size, pool=pool, sent=sent)
        except ModelsyncError:
            raise
        except Exception as exc:
            if size > part_size and self._holds(sha256, size):
                # Another push of this blob took over our open upload and completed it (two
                # machines pushing at once share it): the blob is there, which is the goal.
                log.info("push.completed_elsewhere", remote=self.ref.name, blob=sha256)
                return Uploaded(0, multipart=True)
            raise self.error(exc, f"upload sha256 {sha256}") from exc

    def _holds(self, sha256: str, size: int) -> bool:
        """Whether an object of `size` bytes is under the blob's key now."""
        try:
            head = self.client.head_object(Bucket=self.ref.bucket, Key=self.key(sha256))
        except Exception:  # noqa: BLE001 - only asked after a failure; that failure is reported
            return False
        return int(head.get("ContentLength", -1)) == size

    def _multipart(
        self,
        path: Path,
        sha256: str,
        size: int,
        *,
        part_size: int,
        pool: Executor,
        sent: Callable[[int], None],
    ) -> Uploaded:
        key = self.key(sha256)
        spans = list(_spans(size, part_size))
        upload_id, kept = self._resumable(key, path, spans)
        if upload_id is None:
            created = self.client.create_multipart_upload(
                Bucket=self.ref.bucket, Key=key, ChecksumAlgorithm="SHA256"
            )
            upload_id = str(created["UploadId"])
        elif kept:
            log.info("remote.upload_resumed", remote=self.ref.name, blob=sha256, parts=len(kept))

        def one(number: int) -> dict[str, Any]:
            start, end = spans[number - 1]
            # The part is read twice in CHUNKs (its checksum, then its body), never held
            # whole: memory stays flat whatever --part-size and --jobs are.
            with path.open("rb") as f:
                body = _Window(f.fileno(), start, end)
                checksum = _sha256_b64(body)
                body.seek(0)
                answer = self.client.upload_part(
                    Bucket=self.ref.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=body,
                    ContentLength=end - start,
                    ChecksumSHA256=checksum,
                )
            sent(end - start)
            return {"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum}

        todo = [n for n in range(1, len(spans) + 1) if n not in kept]
        parts = dict(kept)
        # The whole file is hashed while its parts go (S3 checks each part against its own
        # checksum only): bytes gone bad under a stat cache that vouches never complete.
        stop = threading.Event()  # a failed part must not wait for the whole file's hash
        with ThreadPoolExecutor(1, thread_name_prefix="push-hash") as hashing:
            whole = hashing.submit(sha256_file, path, stop=stop)
            try:
                for part in pool.map(one, todo):
                    parts[part["PartNumber"]] = part
            except BaseException:
                stop.set()
                raise
            actual = whole.result()
        if actual != sha256:
            self.client.abort_multipart_upload(Bucket=self.ref.bucket, Key=key, UploadId=upload_id)
            _check(path, sha256, actual)
        self.client.complete_multipart_upload(
            Bucket=self.ref.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [parts[n] for n in sorted(parts)]},
        )
        return Uploaded(
            sum(end - start for start, end in spans) - _held(kept, spans), len(kept), True
        )

    def _resumable(
        self, key: str, path: Path, spans: list[tuple[int, int]]
    ) -> tuple[str | None, dict[int, dict[str, Any]]]:
        """An open upload of `key` an earlier push left, and its parts that hold this file's
        bytes (size and, where listed, SHA-256 checked against the local file); None when there
        is none. An upload whose parts do not fit (another part size) is aborted."""
        listed = self.client.list_multipart_uploads(Bucket=self.ref.bucket, Prefix=key)
        for upload in listed.get("Uploads", ()):
            if upload.get("Key") != key:
                continue
            upload_id = str(upload["UploadId"])
            parts = self.client.list_parts(Bucket=self.ref.bucket, Key=key, UploadId=upload_id)
            kept: dict[int, dict[str, Any]] = {}
            fits = True
            for part in parts.get("Parts", ()):
                number = int(part["PartNumber"])
                if not 1 <= number <= len(spans):
                    fits = False
                    break
                start, end = spans[number - 1]
                if int(part["Size"]) != end - start:
                    fits = False
                    break
                with path.open("rb") as f:
                    checksum = _sha256_b64(_Window(f.fileno(), start, end))
                listed_sum = part.get("ChecksumSHA256")
                if listed_sum is None or listed_sum == checksum:
                    kept[number] = {
                        "PartNumber": number,
                        "ETag": part["ETag"],
                        "ChecksumSHA256": checksum,
                    }
            if fits:
                return upload_id, kept
            self.client.abort_multipart_upload(Bucket=self.ref.bucket, Key=key, UploadId=upload_id)
        return None, {}

    def error(self, exc: BaseException, what: str) -> ModelsyncError:
        """botocore's failure to `what` as one line naming this remote and the fix."""
        from botocore import exceptions as bx  # noqa: PLC0415 - loaded with the client

        where = f"remote {self.ref.name} ({self.ref.describe()})"
        if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
            return AuthError(f"{where}: no AWS credentials found to {what}", hint=fix_for(self.ref))
        if isinstance(exc, bx.ProfileNotFound):
            return _no_profile(self.ref, where)
        if isinstance(exc, bx.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", "?"))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in _AUTH_CODES or status in (401, 403):
                return AuthError(
                    f"{where}: refused to {what} (HTTP {status} {code})", hint=fix_for(self.ref)
                )
            if code == "NoSuchBucket":
                return RemoteError(
                    f"{where}: the bucket {self.ref.bucket} does not exist",
                    hint=f"create it, or fix remotes.{self.ref.name}.bucket in models.toml",
                )
            return RemoteError(
                f"{where}: could not {what} (HTTP {status} {code})",
                hint="the remote is failing; run the same command later",
            )
        if isinstance(exc, bx.BotoCoreError | OSError):
            return RemoteError(
                f"{where}: could not {what}: {type(exc).__name__}",
                hint=f"check remotes.{self.ref.name}.endpoint-url and the network; run the "
                "same command later",
            )
        return RemoteError(f"{where}: could not {what}: {type(exc).__name__}")


def open_remote(ref: RemoteRef) -> S3Remote:
    """A client for `ref` (boto3 imported here, and only here); UsageError when the `s3` extra
    is not installed, AuthError when the named profile does not exist."""
    try:
        import boto3  # noqa: PLC0415 - only where a remote is used: a no-op sync never pays
        from botocore import exceptions as bx  # noqa: PLC0415
        from botocore.config import Config  # noqa: PLC0415
    except ImportError as exc:
        raise UsageError(
            f"remote {ref.name}: S3 remotes need boto3, which is not installed",
            hint="install the extra: `uv tool install 'modelsync[s3]'` (or pipx/pip the same)",
        ) from exc
    config = Config(
        signature_version="s3v4",
        # MinIO and most S3-compatible servers want path-style URLs; AWS takes both.
        s3={"addressing_style": "path" if ref.endpoint_url else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
        max_pool_connections=32,
    )
    try:
        session = boto3.session.Session(profile_name=ref.profile, region_name=ref.region)
    except bx.ProfileNotFound as exc:
        raise _no_profile(ref, f"remote {ref.name}") from exc
    client = session.client(
        "s3",
        endpoint_url=ref.endpoint_url,
        region_name=ref.region or session.region_name or DEFAULT_REGION,
        config=config,
    )
    endpoint = str(client.meta.endpoint_url)
    if not may_carry_token(endpoint):  # the table's is checked on load; the environment's here
        raise UsageError(
            f"remote {ref.name}: the endpoint {endpoint} (from AWS_ENDPOINT_URL or the AWS "
            "profile's endpoint_url) is plain http to another machine; signed requests go over "
            "https (or to this machine) only",
            hint=f"use its https endpoint, in remotes.{ref.name}.endpoint-url or the environment",
        )
    return S3Remote(ref, client)


def _check(path: Path, sha256: str, actual: str) -> None:
    """IntegrityError unless the blob at `path` hashed to its name."""
    if actual != sha256:
        raise IntegrityError(
            f"{path}: this store's copy of sha256 {sha256} hashes to {actual}; not uploaded",
            hint="`modelsync verify --full` finds such blobs, `modelsync sync --repair` replaces "
            "them; then push again",
        )


def _no_profile(ref: RemoteRef, where: str) -> AuthError:
    """The profile named by the table's `profile`, else by AWS_PROFILE, is not configured."""
    if ref.profile:
        named = f"{ref.profile!r} (remotes.{ref.name}.profile)"
        fix = (
            f"create it (`aws configure --profile {ref.profile}`) or fix remotes.{ref.name}.profile"
        )
    else:
        named = f"{os.environ.get('AWS_PROFILE')!r} (AWS_PROFILE)"
        fix = "create it (`aws configure --profile NAME`), or unset AWS_PROFILE"
    return AuthError(f"{where}: the AWS profile {named} does not exist", hint=fix)


def _spans(size: int, part_size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, size, part_size):
        yield start, min(size, start + part_size)


def _held(kept: dict[int, dict[str, Any]], spans: list[tuple[int, int]]) -> int:
    return sum(spans[n - 1][1] - spans[n - 1][0] for n in kept)


class _Window:
    """Bytes [start, end) of an open file as a read-only stream: a part's Body, which botocore
    reads in small pieces (and seeks back to its start to retry)."""

    def __init__(self, fd: int, start: int, end: int) -> None:
        self.fd, self.start, self.end, self.pos = fd, start, end, start

    def read(self, size: int | None = -1) -> bytes:
        left = self.end - self.pos
        data = os.pread(self.fd, left if size is None or size < 0 else min(size, left), self.pos)
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: self.start, os.SEEK_CUR: self.pos, os.SEEK_END: self.end}[whence]
        self.pos = min(max(base + offset, self.start), self.end)
        return self.pos - self.start

    def tell(self) -> int:
        return self.pos - self.start


def _sha256_b64(window: _Window) -> str:
    """The base64 SHA-256 of what is left in `window`, read in CHUNKs."""
    digest = hashlib.sha256()
    while chunk := window.read(CHUNK):
        digest.update(chunk)
    return _b64(digest.digest())


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def mirror_finder(remotes: Sequence[RemoteRef]) -> MirrorFinder:
    """The `sync` side of the remotes: for the digests to download, a signer of GET URLs on
    each remote, in manifest order (each URL is signed as its download starts). A remote that
    cannot sign (no credentials, no boto3, a missing profile) is left out with one warning
    naming the fix: the registry still serves the blob."""

    def find(digests: Sequence[str]) -> dict[str, tuple[Mirror, ...]]:
        found: dict[str, list[Mirror]] = {d: [] for d in digests}
        for ref in remotes:
            try:
                remote = open_remote(ref)
                for digest in digests[:1]:  # can it sign at all? (credentials, profile)
                    remote.presign_get(digest)
            except ModelsyncError as exc:
                log.warning(
                    "remote.unavailable", remote=ref.name, reason=exc.message, fix=exc.hint or ""
                )
                continue
            for digest in digests:
                found[digest].append(
                    Mirror(ref.name, functools.partial(remote.presign_get, digest))
                )
        return {d: tuple(m) for d, m in found.items() if m}

    return find
