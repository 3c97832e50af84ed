"""The values that pass between the sync stages (pure; frozen, slotted dataclasses).

    Lockfile ─desired─▶ Wanted ─inventory─▶ Inventory ─plan─▶ SyncPlan ─apply─▶ Applied

`Wanted` is one file the lock asks for at one target path; the `Inventory` is what stat() (and,
only where stat cannot decide, hashing) found for those paths, their blobs and the placements a
previous sync recorded; the `SyncPlan` is what to fetch, place, remove and report, and is falsy
when there is nothing to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from modelsync.errors import ModelsyncError


class LinkMode(StrEnum):
    """How a target refers to its blob."""

    REFLINK = "reflink"
    HARDLINK = "hardlink"
    SYMLINK = "symlink"
    COPY = "copy"


AUTO_ORDER = (LinkMode.REFLINK, LinkMode.HARDLINK, LinkMode.SYMLINK, LinkMode.COPY)
"""The modes `auto` tries, best first."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A file that may hold a blob's bytes, and which cache it is in (`sync.adopt`)."""

    path: Path
    source: str
    """"huggingface", "ollama" or "placed"."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a model's files download from: a registry's endpoint (tokens: `credentials`)."""

    registry: str
    endpoint: str | None
    kind: str = "huggingface"
    """The registry's type: `huggingface`, `url` or `ollama` (how a file's URL is made)."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """One file the lock wants at one target path."""

    model: str
    path: str
    """The file's path inside its repository (validated by the lockfile model)."""
    size: int
    sha256: str
    target: Path
    """`<target>/<model>/<path>`, absolute."""
    url: str
    registry: str

    @property
    def rel(self) -> str:
        """`<model>/<path>`: how messages name it and the key of the placement record."""
        return f"{self.model}/{self.path}"


@dataclass(frozen=True, slots=True)
class Placement:
    """What a sync placed at one path, as stat() saw it right after the rename."""

    sha256: str
    size: int
    mode: LinkMode
    inode: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class FileStat:
    """The parts of an lstat() result the plan compares (symlinks are not followed)."""

    size: int
    inode: int
    device: int
    mtime_ns: int
    kind: str
    """"file", "symlink" or "other"."""
    link: str | None = None
    """A symlink's target, as readlink() gives it."""


@dataclass(frozen=True, slots=True)
class BlobSeen:
    """One needed blob in the store."""

    sha256: str
    path: Path
    """Its path with the store root resolved (what a symlink placement points at)."""
    stat: FileStat | None
    """None: not in the store."""
    actual_sha256: str | None = None
    """Its digest when it had to be (or was asked to be) hashed; else None."""
    trusted: bool = False
    """Its bytes hash to its name: the stat cache vouches for it, or it was hashed and matched
    (whatever size the lock gives it)."""
    local: tuple[Candidate, ...] = ()
    """Where a blob the store lacks (or holds bad) lies on this machine with the wanted size:
    files to adopt, tried in this order."""
    partial: int = 0
    """Bytes of a partial download of it that a download would resume from."""

    @property
    def ok(self) -> bool:
        """Present, of the right name's content as far as the cache or a hash could tell."""
        return self.stat is not None and self.trusted


@dataclass(frozen=True, slots=True)
class TargetSeen:
    """One target path: what is there, and what the record says sync put there."""

    rel: str
    target: Path
    stat: FileStat | None
    """None: nothing at that path."""
    record: Placement | None
    content_sha256: str | None = None
    """The file's digest, when stat alone could not decide (see `sync.inventory`)."""

    @property
    def untouched(self) -> bool:
        """Recorded by a sync, stat() still sees exactly what it placed, and, if its bytes were
        hashed (`--full`, `--repair`), they are still the recorded ones."""
        return (
            self.stat is not None
            and self.record is not None
            and (self.stat.size, self.stat.inode, self.stat.mtime_ns)
            == (self.record.size, self.record.inode, self.record.mtime_ns)
            and self.content_sha256 in (None, self.record.sha256)
        )


@dataclass(frozen=True, slots=True)
class Inventory:
    """What is on disk for one sync: blobs, wanted targets, and recorded placements no longer
    wanted (within the models this run is about)."""

    target_root: Path
    blobs: Mapping[str, BlobSeen]
    targets: Mapping[str, TargetSeen]
    stale: tuple[TargetSeen, ...] = ()
    claimed_elsewhere: frozenset[str] = frozenset()
    """Stale paths another project's record (same target dir) still lists."""
    lock: Path = Path("models.lock")
    """The lock whose placements the record holds (its record is `placed.record_path`)."""
    recorded_mode: LinkMode | None = None
    """The mode of the latest placement recorded in this target dir."""
    root_registered: bool = True
    links: tuple[LinkMode, ...] = AUTO_ORDER
    """The modes the target dir's filesystem should take from the store, best first, as a
    read-only look judged them (`sync.link.supported`)."""


class PlaceReason(StrEnum):
    """Why a file is (re)placed."""

    MISSING = "missing"
    OUTDATED = "outdated"
    RELINK = "relink"
    LINK_MODE = "link mode"
    REPAIR = "repair"


@dataclass(frozen=True, slots=True)
class FetchStep:
    """A blob to bring into the store: adopted from a local file when `adopt` names any (each is
    hashed first; if none matches, it is downloaded after all), else downloaded from
    `resume_from` on."""

    sha256: str
    size: int
    url: str
    registry: str
    label: str
    adopt: tuple[Candidate, ...] = ()
    resume_from: int = 0


@dataclass(frozen=True, slots=True)
class PlaceStep:
    """A target to (re)create from its blob."""

    rel: str
    target: Path
    sha256: str
    size: int
    reason: PlaceReason


@dataclass(frozen=True, slots=True)
class RemoveStep:
    """A placement the previous lock made that this one no longer wants."""

    rel: str
    target: Path
    placement: Placement


@dataclass(frozen=True, slots=True)
class RecordStep:
    """A record change without touching the file: forget one entry, or take one in."""

    rel: str
    placement: Placement | None
    """None: forget the entry."""
    note: str


@dataclass(frozen=True, slots=True)
class Conflict:
    """A target path holding bytes sync did not place (or that changed since): never overwritten
    without `--repair`."""

    rel: str
    target: Path
    sha256: str
    size: int
    found: str
    modified: bool
    """True: sync placed it and it changed since; False: sync never placed it."""


@dataclass(frozen=True, slots=True)
class BadBlob:
    """A blob whose bytes do not hash to its name: moved to quarantine and fetched again."""

    sha256: str
    path: Path
    found: str


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """Everything one sync would do; falsy when there is nothing to do."""

    fetch: tuple[FetchStep, ...] = ()
    place: tuple[PlaceStep, ...] = ()
    remove: tuple[RemoveStep, ...] = ()
    record: tuple[RecordStep, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    bad_blobs: tuple[BadBlob, ...] = ()
    register_root: bool = False
    unchanged: int = 0
    link: LinkMode | None = None
    """The forced link mode; None: the best the target dir takes."""
    links: tuple[LinkMode, ...] = ()
    """What apply places by: the first mode, and until a placement works, the next where one
    fails (the look at the filesystem can be wrong); empty when nothing is placed."""

    def __bool__(self) -> bool:
        return bool(
            self.fetch
            or self.place
            or self.remove
            or self.record
            or self.conflicts
            or self.bad_blobs
            or self.register_root
        )

    @property
    def link_mode(self) -> LinkMode | None:
        """The mode files will be placed by (None: nothing to place)."""
        return self.links[0] if self.links else None

    @property
    def downloads(self) -> tuple[FetchStep, ...]:
        """The blobs to download (no local copy to adopt)."""
        return tuple(step for step in self.fetch if not step.adopt)

    @property
    def adoptions(self) -> tuple[FetchStep, ...]:
        """The blobs to adopt from local files."""
        return tuple(step for step in self.fetch if step.adopt)

    @property
    def bytes_to_fetch(self) -> int:
        """Bytes to download: neither adopted nor already in a partial download."""
        return sum(step.size - step.resume_from for step in self.downloads)

    @property
    def bytes_resumed(self) -> int:
        """Bytes of the downloads that partial downloads already hold."""
        return sum(step.resume_from for step in self.downloads)

    @property
    def bytes_to_adopt(self) -> int:
        """Bytes to adopt from local files instead of downloading them."""
        return sum(step.size for step in self.adoptions)


@dataclass(frozen=True, slots=True)
class Applied:
    """What applying a plan did."""

    fetched: int = 0
    bytes_fetched: int = 0
    fetch_seconds: float = 0.0
    adopted: tuple[tuple[str, str], ...] = ()
    """(label, where from) of every blob adopted from a local cache instead of downloaded."""
    bytes_adopted: int = 0
    resumed: tuple[tuple[str, int], ...] = ()
    """(label, bytes reused) of every download continued from an earlier run's partial."""
    from_remotes: tuple[tuple[str, str], ...] = ()
    """(label, remote) of every blob downloaded from a blob remote instead of its registry."""
    placed: int = 0
    removed: tuple[str, ...] = ()
    """`<model>/<path>` of every stale placement removed."""
    link_modes: Mapping[str, str] = field(default_factory=dict)
    """Target dir → the link mode used there."""

    def __add__(self, other: Applied) -> Applied:
        """Two stages' work together: what was fetched ahead, then what apply did."""
        summed: dict[str, Any] = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "link_modes"  # counts, seconds and tuples add up
        }
        return Applied(**summed, link_modes={**self.link_modes, **other.link_modes})


@dataclass(frozen=True, slots=True)
class Fetched:
    """What was adopted and downloaded before the store lock was taken to place."""

    applied: Applied = field(default_factory=Applied)
    """Its fetch and adoption counts (nothing placed yet)."""
    failed: Mapping[str, ModelsyncError] = field(default_factory=dict)
    """sha256 → why that blob is still missing."""
