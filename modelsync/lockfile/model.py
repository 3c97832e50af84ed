"""models.lock as values: `Lockfile` → `LockedModel`s → `LockedFile`s, and the profiles used.

Pydantic (frozen, `extra="forbid"`, strict) because a lock crosses a file and a code review:
every value is checked on the way in (hex digests, safe relative paths, URLs without
credentials), so `sync` can trust what it reads.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from modelsync.rules import is_commit_id, is_prefixed_digest, is_safe_path, is_sha256

LOCK_VERSION = 1
"""The format written; readers refuse newer versions (see `render.parse_lock`)."""


def _kebab(name: str) -> str:
    return name.replace("_", "-")


class _Entry(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, alias_generator=_kebab, populate_by_name=True
    )


def safe_relative_path(path: str) -> str:
    """A relative POSIX path without `..`, `.`, empty parts, backslashes or control characters."""
    if not is_safe_path(path):
        raise ValueError(f"unsafe path {path!r}: must be relative, without '..' or backslashes")
    return path


class LockedFile(_Entry):
    """One file to place: path in the repository, size and SHA-256."""

    path: str
    size: int = Field(ge=0)
    sha256: str

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return safe_relative_path(value)

    @field_validator("sha256")
    @classmethod
    def _sha256(cls, value: str) -> str:
        if not is_sha256(value):
            raise ValueError("expected 64 lowercase hex digits")
        return value


class LockedProfile(_Entry):
    """A hardware profile the lock was resolved for, and its fingerprint."""

    name: str
    source: Literal["declared", "detected"]
    fingerprint: str
    ram: int = Field(ge=0)
    vram: int = Field(default=0, ge=0)
    """All GPUs together."""
    gpus: int = Field(default=0, ge=0)
    unified: bool = False

    @field_validator("fingerprint")
    @classmethod
    def _fingerprint(cls, value: str) -> str:
        if not is_prefixed_digest(value):
            raise ValueError('expected "sha256:" and 64 hex digits')
        return value


class LockedModel(_Entry):
    """One model's pinned files, for every profile (`profile` None) or for one."""

    name: str
    registry: str
    repo: str | None = None
    url: str | None = None
    revision: str | None = None
    commit: str | None = None
    """A Hub commit (40 hex); for an Ollama registry the manifest's digest (`sha256:<hex>`,
    checked against the registry's type where the lock meets models.toml: `sync.desired`)."""
    profile: str | None = None
    quant: str | None = None
    context: int | None = Field(default=None, ge=1)
    memory: int | None = Field(default=None, ge=0)
    """Estimated bytes to run it at `context` (weights + KV cache + buffers)."""
    reason: str
    inputs: str
    """Digest of the manifest entry and profiles this was resolved from (keeps pins stable)."""
    files: tuple[LockedFile, ...] = Field(validation_alias="file", serialization_alias="file")

    @field_validator("commit")
    @classmethod
    def _commit(cls, value: str | None) -> str | None:
        if value is not None and not (is_commit_id(value) or is_prefixed_digest(value)):
            raise ValueError('expected a 40-hex commit id (or "sha256:<hex>" for Ollama)')
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or parts.username or parts.password:
            raise ValueError("expected an http(s) URL without credentials")
        return value

    @field_validator("inputs")
    @classmethod
    def _inputs(cls, value: str) -> str:
        if not is_prefixed_digest(value):
            raise ValueError('expected "sha256:" and 64 hex digits')
        return value

    @field_validator("files")
    @classmethod
    def _files(cls, value: tuple[LockedFile, ...]) -> tuple[LockedFile, ...]:
        if not value:
            raise ValueError("a locked model needs at least one file")
        paths = [f.path for f in value]
        if len(set(paths)) != len(paths):
            raise ValueError("a file is listed twice")
        return tuple(sorted(value, key=lambda f: f.path))

    @property
    def size(self) -> int:
        """Bytes of all its files."""
        return sum(f.size for f in self.files)


class Lockfile(_Entry):
    """The whole lock."""

    version: int
    manifest_digest: str
    profiles: tuple[LockedProfile, ...] = Field(
        default=(), validation_alias="profile", serialization_alias="profile"
    )
    models: tuple[LockedModel, ...] = Field(
        default=(), validation_alias="model", serialization_alias="model"
    )

    @field_validator("manifest_digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_prefixed_digest(value):
            raise ValueError('expected "sha256:" and 64 hex digits')
        return value

    @field_validator("models")
    @classmethod
    def _models(cls, value: tuple[LockedModel, ...]) -> tuple[LockedModel, ...]:
        keys = [(m.name, m.profile or "") for m in value]
        if len(set(keys)) != len(keys):
            raise ValueError("a model is locked twice for the same profile")
        return tuple(sorted(value, key=lambda m: (m.name, m.profile or "")))

    @field_validator("profiles")
    @classmethod
    def _profiles(cls, value: tuple[LockedProfile, ...]) -> tuple[LockedProfile, ...]:
        return tuple(sorted(value, key=lambda p: p.name))

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
