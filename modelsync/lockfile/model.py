"""models.lock as values: `Lockfile` → `LockedModel`s → `LockedFile`s, and the profiles used.

Frozen dataclasses, checked strictly because a lock crosses a file and a code review: every
value on the way in (hex digests, safe relative paths, URLs without credentials; strict types,
no unknown key) by `schema.load` (a fast reader, pydantic where it gives up), and the field
rules again when code builds one (`Table.__post_init__`), so `sync` can trust what it reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from modelsync.rules import is_commit_id, is_prefixed_digest, is_safe_path, is_sha256
from modelsync.schema import Bound, Check, Table, kebab

LOCK_VERSION = 1
"""The format written; readers refuse newer versions (see `render.parse_lock`)."""

_TABLES = {"files": "file", "models": "model", "profiles": "profile"}


def _key(name: str) -> str:
    """A field's key in models.lock: kebab-case; the arrays of tables are singular."""
    return _TABLES.get(name, kebab(name))


class _Entry(Table):
    __slots__ = ()
    __pydantic_config__: ClassVar[dict[str, Any]] = {
        "extra": "forbid",
        "strict": True,
        "alias_generator": _key,
        "populate_by_name": True,
    }


def safe_relative_path(path: str) -> str:
    """A relative POSIX path without `..`, `.`, empty parts, backslashes or control characters."""
    if not is_safe_path(path):
        raise ValueError(f"unsafe path {path!r}: must be relative, without '..' or backslashes")
    return path


def _sha256(value: str) -> str:
    if not is_sha256(value):
        raise ValueError("expected 64 lowercase hex digits")
    return value


def _prefixed(value: str) -> str:
    if not is_prefixed_digest(value):
        raise ValueError('expected "sha256:" and 64 hex digits')
    return value


def _commit(value: str) -> str:
    if not (is_commit_id(value) or is_prefixed_digest(value)):
        raise ValueError('expected a 40-hex commit id (or "sha256:<hex>" for Ollama)')
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        raise ValueError("expected an http(s) URL without credentials")
    return value


def _files(value: tuple[LockedFile, ...]) -> tuple[LockedFile, ...]:
    if not value:
        raise ValueError("a locked model needs at least one file")
    paths = [f.path for f in value]
    if len(set(paths)) != len(paths):
        raise ValueError("a file is listed twice")
    return tuple(sorted(value, key=lambda f: f.path))


def _models(value: tuple[LockedModel, ...]) -> tuple[LockedModel, ...]:
    keys = [(m.name, m.profile or "") for m in value]
    if len(set(keys)) != len(keys):
        raise ValueError("a model is locked twice for the same profile")
    return tuple(sorted(value, key=lambda m: (m.name, m.profile or "")))


def _profiles(value: tuple[LockedProfile, ...]) -> tuple[LockedProfile, ...]:
    return tuple(sorted(value, key=lambda p: p.name))


Count = Annotated[int, Bound(ge=0)]


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedFile(_Entry):
    """One file to place: path in the repository, size and SHA-256."""

    path: Annotated[str, Check(safe_relative_path)]
    size: Count
    sha256: Annotated[str, Check(_sha256)]


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedProfile(_Entry):
    """A hardware profile the lock was resolved for, and its fingerprint."""

    name: str
    source: Literal["declared", "detected"]
    fingerprint: Annotated[str, Check(_prefixed)]
    ram: Count
    vram: Count = 0
    """All GPUs together."""
    gpus: Count = 0
    unified: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LockedModel(_Entry):
    """One model's pinned files, for every profile (`profile` None) or for one."""

    name: str
    registry: str
    repo: str | None = None
    url: Annotated[str, Check(_url)] | None = None
    revision: str | None = None
    commit: Annotated[str, Check(_commit)] | None = None
    """A Hub commit (40 hex); for an Ollama registry the manifest's digest (`sha256:<hex>`,
    checked against the registry's type where the lock meets models.toml: `sync.desired`)."""
    profile: str | None = None
    quant: str | None = None
    context: Annotated[int, Bound(ge=1)] | None = None
    memory: Count | None = None
    """Estimated bytes to run it at `context` (weights + KV cache + buffers)."""
    reason: str
    inputs: Annotated[str, Check(_prefixed)]
    """Digest of the manifest entry and profiles this was resolved from (keeps pins stable)."""
    files: Annotated[tuple[LockedFile, ...], Check(_files)]

    @property
    def size(self) -> int:
        """Bytes of all its files."""
        return sum(f.size for f in self.files)


@dataclass(frozen=True, slots=True, kw_only=True)
class Lockfile(_Entry):
    """The whole lock."""

    version: int
    manifest_digest: Annotated[str, Check(_prefixed)]
    profiles: Annotated[tuple[LockedProfile, ...], Check(_profiles)] = ()
    models: Annotated[tuple[LockedModel, ...], Check(_models)] = ()

    @property
    def declared(self) -> tuple[LockedProfile, ...]:
        """The declared profiles. Older versions also wrote the machine that ran `lock` as a
        `detected` profile; it is read (so those locks load) and otherwise ignored."""
        return tuple(p for p in self.profiles if p.source == "declared")

    def entries(self, name: str) -> tuple[LockedModel, ...]:
        """Every entry of a model (one, or one per profile)."""
        return tuple(m for m in self.models if m.name == name)

    def for_profile(self, name: str, profile: str | None) -> LockedModel | None:
        """The entry a profile uses: its own, else the shared one."""
        entries = self.entries(name)
        own = next((m for m in entries if m.profile == profile), None)
        return own or next((m for m in entries if m.profile is None), None)
