"""What a bundle holds, as values: its index (`bundle.json`), member names, and the plan.

A bundle is a folder or an uncompressed tar holding, at fixed names:

    bundle.json              this index: format version, the lock's SHA-256 and size, every
                             blob's SHA-256 and size, sorted
    models.lock              the lock the blobs belong to, byte for byte
    blobs/sha256/<64 hex>    each blob, named by its SHA-256

The index is read from untrusted media: it is parsed strictly (unknown keys, bad digests and
negative sizes are refused) and every blob it lists must be one the bundled lock pins, at the
lock's size. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pydantic
from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelsync.errors import IntegrityError, UsageError
from modelsync.lockfile.model import LockedModel, Lockfile
from modelsync.rules import is_sha256

FORMAT: Literal["modelsync-bundle"] = "modelsync-bundle"
BUNDLE_VERSION = 1
"""The index format written; readers refuse newer versions."""
INDEX = "bundle.json"
LOCK = "models.lock"
BLOB_DIR = "blobs/sha256"
MAX_META_BYTES = 16 << 20
"""bundle.json and models.lock are read whole: a bigger claim is refused unread."""

MemberKind = Literal["index", "lock", "blob"]


def blob_member(sha256: str) -> str:
    """The member name of a blob inside a bundle."""
    return f"{BLOB_DIR}/{sha256}"


def member_kind(name: str) -> MemberKind | None:
    """What a member name is (None: no name a bundle holds; it is never read)."""
    if name == INDEX:
        return "index"
    if name == LOCK:
        return "lock"
    folder, _, leaf = name.rpartition("/")
    return "blob" if folder == BLOB_DIR and is_sha256(leaf) else None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class BundleBlob(_Strict):
    """One blob of the bundle."""

    sha256: str
    size: int = Field(ge=0)

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not is_sha256(value):
            raise ValueError("expected 64 lowercase hex digits")
        return value


class BundleIndex(_Strict):
    """`bundle.json`: which lock, and the blobs carried for it."""

    format: Literal["modelsync-bundle"]
    version: int
    lock: BundleBlob
    """The SHA-256 and size of the bundled models.lock."""
    blobs: tuple[BundleBlob, ...]

    @field_validator("blobs")
    @classmethod
    def _blobs(cls, value: tuple[BundleBlob, ...]) -> tuple[BundleBlob, ...]:
        digests = [b.sha256 for b in value]
        if len(set(digests)) != len(digests):
            raise ValueError("a blob is listed twice")
        return tuple(sorted(value, key=lambda b: b.sha256))

    @property
    def size(self) -> int:
        """Bytes of all blobs."""
        return sum(b.size for b in self.blobs)


def lock_blobs(models: Iterable[LockedModel]) -> tuple[BundleBlob, ...]:
    """Every distinct blob the entries pin, sorted by digest (a file shared by several
    entries or profiles is carried once)."""
    found = {f.sha256: f.size for m in models for f in m.files}
    return tuple(BundleBlob(sha256=s, size=n) for s, n in sorted(found.items()))


def make_index(lock_text: bytes, models: Iterable[LockedModel]) -> BundleIndex:
    """The index of a bundle of `models` (entries of the lock whose bytes are `lock_text`)."""
    lock = BundleBlob(sha256=hashlib.sha256(lock_text).hexdigest(), size=len(lock_text))
    return BundleIndex(format=FORMAT, version=BUNDLE_VERSION, lock=lock, blobs=lock_blobs(models))


def render_index(index: BundleIndex) -> bytes:
    """The bytes of `bundle.json`: fixed key order, sorted blobs, one blob per line."""
    rows = ",\n".join(f"  {_pair(b)}" for b in index.blobs)
    blobs = f"[\n{rows}\n ]" if rows else "[]"
    text = (
        f'{{\n "format": {json.dumps(index.format)},\n "version": {index.version},\n'
        f' "lock": {_pair(index.lock)},\n "blobs": {blobs}\n}}\n'
    )
    return text.encode("ascii")


def _pair(blob: BundleBlob) -> str:
    return json.dumps({"sha256": blob.sha256, "size": blob.size})


def parse_index(data: bytes, where: str) -> BundleIndex:
    """Read `bundle.json` (`where` names it in errors): IntegrityError when it is damaged,
    UsageError when a newer modelsync wrote it."""
    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as err:
        raise _damaged(where, f"not JSON ({err})") from None
    version = raw.get("version") if isinstance(raw, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > BUNDLE_VERSION:
        raise UsageError(
            f"{where}: bundle format version {version} is newer than this modelsync reads "
            f"({BUNDLE_VERSION})",
            hint="upgrade modelsync on this machine, or export the bundle with this version",
        )
    try:
        index = BundleIndex.model_validate_json(data)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top)"
        raise _damaged(where, f"{field}: {first['msg']}") from None
    if index.version < 1:
        raise _damaged(where, "version: expected a positive integer")
    return index


def _damaged(where: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"{where}: damaged bundle index: {why}",
        hint="export the bundle again on the connected machine (`modelsync export --bundle`)",
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A blob (or member) of a bundle that was not admitted, and why."""

    name: str
    reason: str


def check_listing(index: BundleIndex, lock: Lockfile) -> tuple[list[BundleBlob], list[Refusal]]:
    """The listed blobs the bundled lock pins at the listed size (to import), and a refusal
    for each other one: a bundle carries nothing its lock does not name."""
    pinned = {f.sha256: f.size for m in lock.models for f in m.files}
    wanted: list[BundleBlob] = []
    refused: list[Refusal] = []
    for blob in index.blobs:
        size = pinned.get(blob.sha256)
        if size is None:
            refused.append(Refusal(blob.sha256, "listed in bundle.json but not in its models.lock"))
        elif size != blob.size:
            refused.append(
                Refusal(
                    blob.sha256,
                    f"bundle.json says {blob.size} bytes, its models.lock pins {size}",
                )
            )
        else:
            wanted.append(blob)
    return wanted, refused
