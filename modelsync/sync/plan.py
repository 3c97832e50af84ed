"""Wanted files + Inventory → SyncPlan (pure: values in, a value out).

For each wanted target, in this order:

* nothing there → place it;
* sync placed it and stat() sees it untouched → keep it if it is still the wanted blob by the
  wanted link mode, else re-place it (outdated file, re-fetched blob, `--link` changed);
* it is a link to the wanted blob, or a file with the wanted bytes that sync had placed → keep
  it and (re)record it;
* a file with the wanted bytes that sync never placed → keep it, unrecorded (never removed);
* anything else is a conflict: replaced only with `--repair`; without it, sync refuses the
  whole plan before it changes anything (apply checks conflicts first), so a stale file is
  never removed for a replacement that cannot be placed.

Recorded placements no longer wanted are removed if untouched and no other project sharing the
target dir lists them, else forgotten (left to the user, or to that project). A blob missing
from the store, or whose bytes do not hash to its name, is fetched (the bad one moved to
quarantine first): adopted from a local file of the wanted size when the inventory found one,
else downloaded, resuming a partial download. Files are placed by the forced link mode, else
by the best the inventory found the target dir takes (falling back to the next where a
placement proves it wrong). The plan decides all of this, so `--dry-run` and `status` show the
bytes apply will download, not more, and the link mode it will use.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet

from modelsync.sync.model import (
    BadBlob,
    BlobSeen,
    Conflict,
    FetchStep,
    FileStat,
    Inventory,
    LinkMode,
    Placement,
    PlaceReason,
    PlaceStep,
    RecordStep,
    RemoveStep,
    SyncPlan,
    TargetSeen,
    Wanted,
)


def refers_to_blob(seen: FileStat, blob: BlobSeen) -> bool:
    """A hardlink of the blob (same inode) or a symlink to its path: stat alone says so."""
    if blob.stat is None:
        return False
    if seen.kind == "symlink":
        return seen.link == str(blob.path)
    return seen.kind == "file" and (seen.inode, seen.device) == (blob.stat.inode, blob.stat.device)


def _mode_of(seen: FileStat, blob: BlobSeen, recorded: Placement | None) -> LinkMode:
    if seen.kind == "symlink":
        return LinkMode.SYMLINK
    if blob.stat is not None and (seen.inode, seen.device) == (blob.stat.inode, blob.stat.device):
        return LinkMode.HARDLINK
    if recorded is not None and recorded.mode in (LinkMode.REFLINK, LinkMode.COPY):
        return recorded.mode
    return LinkMode.COPY


def describe(seen: FileStat | None, digest: str | None = None) -> str:
    """What is at a path, for messages: `missing`, `a symlink to X`, `N bytes, sha256 …`."""
    if seen is None:
        return "missing"
    if seen.kind == "symlink":
        return f"a symlink to {seen.link}"
    if seen.kind != "file":
        return "not a regular file"
    return f"{seen.size} bytes" + (f", sha256 {digest}" if digest else "")


def _bad_blob(blob: BlobSeen, size: int) -> BadBlob | None:
    if blob.stat is None or blob.trusted:
        return None
    if blob.stat.size != size:
        found = f"{blob.stat.size} bytes instead of {size}"
    else:
        found = f"sha256 {blob.actual_sha256}"
    return BadBlob(blob.sha256, blob.path, found)


def plan_sync(
    wanted: Sequence[Wanted],
    inventory: Inventory,
    *,
    link: LinkMode | None = None,
    repair: bool = False,
) -> SyncPlan:
    """The plan that makes the targets match `wanted` (see the module docstring)."""
    fetch: dict[str, FetchStep] = {}
    bad: dict[str, BadBlob] = {}
    place: list[PlaceStep] = []
    record: list[RecordStep] = []
    conflicts: list[Conflict] = []
    unchanged = 0
    for item in wanted:
        blob = inventory.blobs[item.sha256]
        if not blob.ok and item.sha256 not in fetch:
            fetch[item.sha256] = FetchStep(
                item.sha256,
                item.size,
                item.url,
                item.registry,
                item.rel,
                adopt=blob.local,
                resume_from=0 if blob.local else blob.partial,
            )
            broken = _bad_blob(blob, item.size)
            if broken is not None:
                bad[item.sha256] = broken
        target = inventory.targets[item.rel]
        reason = _place_reason(item, target, blob, link)
        if reason is not None:
            place.append(PlaceStep(item.rel, item.target, item.sha256, item.size, reason))
            continue
        if target.untouched:
            unchanged += 1
            continue
        seen = target.stat
        assert seen is not None  # a missing target always has a place reason
        if (blob.ok and refers_to_blob(seen, blob)) or (
            target.record is not None and target.content_sha256 == item.sha256
        ):
            mode = _mode_of(seen, blob, target.record)
            placement = Placement(item.sha256, seen.size, mode, seen.inode, seen.mtime_ns)
            record.append(RecordStep(item.rel, placement, "already in place"))
            unchanged += 1
        elif target.record is None and target.content_sha256 == item.sha256:
            unchanged += 1  # the user's own copy of the same bytes: fine, and never removed
        elif repair:
            place.append(
                PlaceStep(item.rel, item.target, item.sha256, item.size, PlaceReason.REPAIR)
            )
        else:
            conflicts.append(
                Conflict(
                    item.rel,
                    item.target,
                    item.sha256,
                    item.size,
                    describe(seen, target.content_sha256),
                    modified=target.record is not None,
                )
            )
    remove, forget = _stale(inventory.stale, inventory.claimed_elsewhere)
    return SyncPlan(
        fetch=tuple(fetch.values()),
        place=tuple(place),
        remove=remove,
        record=tuple(record) + forget,
        conflicts=tuple(conflicts),
        bad_blobs=tuple(bad.values()),
        register_root=not inventory.root_registered,
        unchanged=unchanged,
        link=link,
        links=((link,) if link else inventory.links) if place else (),
    )


def _place_reason(
    item: Wanted, target: TargetSeen, blob: BlobSeen, link: LinkMode | None
) -> PlaceReason | None:
    if target.stat is None:
        return PlaceReason.MISSING
    if not target.untouched:
        return None
    assert target.record is not None
    if target.record.sha256 != item.sha256:
        return PlaceReason.OUTDATED
    if link is not None and target.record.mode is not link:
        return PlaceReason.LINK_MODE
    linked = target.record.mode in (LinkMode.HARDLINK, LinkMode.SYMLINK)
    if linked and not (blob.ok and refers_to_blob(target.stat, blob)):
        return PlaceReason.RELINK  # the blob was replaced (or comes back): link the new one
    return None


def _stale(
    stale: Sequence[TargetSeen], claimed: AbstractSet[str]
) -> tuple[tuple[RemoveStep, ...], tuple[RecordStep, ...]]:
    remove: list[RemoveStep] = []
    forget: list[RecordStep] = []
    for seen in stale:
        assert seen.record is not None
        if seen.stat is None:
            forget.append(RecordStep(seen.rel, None, "already gone"))
        elif seen.rel in claimed:
            forget.append(RecordStep(seen.rel, None, "still placed for another project"))
        elif seen.untouched:
            remove.append(RemoveStep(seen.rel, seen.target, seen.record))
        else:
            forget.append(RecordStep(seen.rel, None, "changed since it was placed: left to you"))
    return tuple(remove), tuple(forget)
