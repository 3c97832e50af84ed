"""What `push` must upload (pure: values in, a value out).

Every blob a lock needs is in one of three states: on the remote already (with the locked
size), to upload (in this store, not on the remote), or missing here (neither: a machine that
synced it must push it). An object of another size under a blob's key is not that blob (a
stray or hostile upload): it is uploaded over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NeededBlob:
    """One blob the lock pins, and the first file that names it (for messages)."""

    sha256: str
    size: int
    label: str


@dataclass(frozen=True, slots=True)
class PushPlan:
    """What a push does; falsy when there is nothing to upload."""

    upload: tuple[NeededBlob, ...] = ()
    present: tuple[NeededBlob, ...] = ()
    missing: tuple[NeededBlob, ...] = ()
    """Needed, absent from the remote and from this store."""

    def __bool__(self) -> bool:
        return bool(self.upload)

    @property
    def bytes_to_upload(self) -> int:
        """Bytes the upload sends."""
        return sum(b.size for b in self.upload)


def plan_push(
    needed: Iterable[NeededBlob], local: AbstractSet[str], remote: Mapping[str, int]
) -> PushPlan:
    """Sort `needed` (deduplicated by digest, in order) by where it is: `local` holds the
    digests this store has, `remote` maps the remote's digests to their object sizes."""
    seen: dict[str, NeededBlob] = {}
    for blob in needed:
        seen.setdefault(blob.sha256, blob)
    upload, present, missing = [], [], []
    for blob in seen.values():
        if remote.get(blob.sha256) == blob.size:
            present.append(blob)
        elif blob.sha256 in local:
            upload.append(blob)
        else:
            missing.append(blob)
    return PushPlan(tuple(upload), tuple(present), tuple(missing))
