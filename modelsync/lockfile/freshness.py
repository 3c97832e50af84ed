"""Is the lock fresh versus the manifest? Known offline, from the digests and entries (pure).

The manifest digest alone is not enough: a hand-edited lock (a pull request that turns a locked
`repo` into a `url` and keeps the digest) would pass. So every entry must also repeat the
registry, repo/url and revision the manifest asks for, the commit when the revision is one, and
a URL source's pinned SHA-256.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from modelsync.lockfile.model import LockedModel, Lockfile
from modelsync.rules import is_commit_id


@dataclass(frozen=True, slots=True)
class Freshness:
    """The verdict and, when stale, why in one phrase."""

    fresh: bool
    reason: str

    def __bool__(self) -> bool:
        return self.fresh


@dataclass(frozen=True, slots=True)
class Origin:
    """Where models.toml says a model comes from: what each of its locked entries must repeat."""

    registry: str
    repo: str | None = None
    url: str | None = None
    revision: str | None = None
    sha256: str | None = None
    """A URL source's pinned digest: its locked file must carry it."""


def mismatch(entry: LockedModel, origin: Origin) -> str | None:
    """Which field of a locked entry differs from its manifest origin, as a phrase; None if none."""
    for name, locked, wanted in (
        ("registry", entry.registry, origin.registry),
        ("url", entry.url, origin.url),
        ("repo", entry.repo, origin.repo),
        ("revision", entry.revision, origin.revision),
    ):
        if locked != wanted:
            return f"model {entry.name}: the lock's {name} differs from models.toml"
    pinned = origin.revision is not None and is_commit_id(origin.revision)
    if pinned and entry.commit != origin.revision:  # a pinned commit is checkable offline
        return f"model {entry.name}: the lock's commit differs from models.toml"
    if origin.sha256 is not None and any(f.sha256 != origin.sha256 for f in entry.files):
        return f"model {entry.name}: the lock's sha256 differs from models.toml"
    return None


def freshness(
    lock: Lockfile | None,
    manifest_digest: str,
    origins: Mapping[str, Origin],
    profiles: Collection[str],
) -> Freshness:
    """Fresh when the lock exists, was made from this manifest, covers every model of `origins`
    (name → origin) and holds no entry that models.toml does not explain: each entry repeats its
    origin, and names no profile outside the declared `profiles`."""
    if lock is None:
        return Freshness(fresh=False, reason="there is no lock")
    if lock.manifest_digest != manifest_digest:
        return Freshness(fresh=False, reason="models.toml changed since the lock was written")
    locked = {m.name for m in lock.models}
    missing = sorted(set(origins) - locked)
    if missing:
        return Freshness(fresh=False, reason=f"the lock lacks {', '.join(missing)}")
    extra = sorted(locked - set(origins))
    if extra:
        return Freshness(fresh=False, reason=f"the lock still holds {', '.join(extra)}")
    for entry in lock.models:
        reason = mismatch(entry, origins[entry.name])
        if reason is None and entry.profile is not None and entry.profile not in profiles:
            reason = f"model {entry.name}: the lock's profile {entry.profile} is not declared"
        if reason is not None:
            return Freshness(fresh=False, reason=reason)
    undeclared = sorted(
        p.name for p in lock.profiles if p.source == "declared" and p.name not in profiles
    )
    if undeclared:
        return Freshness(fresh=False, reason=f"the lock declares profile {', '.join(undeclared)}")
    return Freshness(fresh=True, reason="the lock matches models.toml")


def reusable(lock: Lockfile | None, name: str, inputs: str, origin: Origin) -> bool:
    """Whether a model's locked entries were resolved from exactly these inputs and still name
    the origin models.toml asks for (a tampered entry is resolved again, never kept)."""
    if lock is None:
        return False
    entries = lock.entries(name)
    return bool(entries) and all(
        e.inputs == inputs and mismatch(e, origin) is None for e in entries
    )
