"""Is the lock fresh versus the manifest? Known offline, from the digests alone (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from modelsync.lockfile.model import Lockfile


@dataclass(frozen=True, slots=True)
class Freshness:
    """The verdict and, when stale, why in one phrase."""

    fresh: bool
    reason: str

    def __bool__(self) -> bool:
        return self.fresh


def freshness(lock: Lockfile | None, manifest_digest: str, models: tuple[str, ...]) -> Freshness:
    """Fresh when the lock exists, was made from this manifest, and covers every model."""
    if lock is None:
        return Freshness(fresh=False, reason="there is no lock")
    if lock.manifest_digest != manifest_digest:
        return Freshness(fresh=False, reason="models.toml changed since the lock was written")
    locked = {m.name for m in lock.models}
    missing = sorted(set(models) - locked)
    if missing:
        return Freshness(fresh=False, reason=f"the lock lacks {', '.join(missing)}")
    extra = sorted(locked - set(models))
    if extra:
        return Freshness(fresh=False, reason=f"the lock still holds {', '.join(extra)}")
    return Freshness(fresh=True, reason="the lock matches models.toml")


def reusable(lock: Lockfile | None, name: str, inputs: str) -> bool:
    """Whether a model's locked entries were resolved from exactly these inputs."""
    if lock is None:
        return False
    entries = lock.entries(name)
    return bool(entries) and all(e.inputs == inputs for e in entries)
