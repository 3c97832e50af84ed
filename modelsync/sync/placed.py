"""The record of what one project's sync placed in a target dir:
`<target>/.modelsync/placed-<id>.json`, one per lock (the id is a digest of the lock's path).

Only paths in this record are ever removed as stale, and only while stat() still sees exactly
what sync placed (size, inode, mtime), so a file the user put there, one that changed since, or
one another project placed in a shared target dir is never deleted. The record lives in the
target dir so that it follows the files, is written atomically (temp + fsync + rename) and
deterministically (sorted keys), and carries a format version.

While sync places, each placement is first appended (and fsynced) to `placed-<id>.json.journal`,
right before the rename that puts it in place; the record written at the end replaces the
journal. A sync killed in between leaves the journal, and reading the record folds in every
journaled placement that stat() finds in place: what a killed run placed stays sync's, to be
removed when a later lock drops it, never mistaken for the user's own files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from modelsync import atomic
from modelsync.errors import UsageError
from modelsync.sync.desired import target_of
from modelsync.sync.model import LinkMode, Placement

RECORD_DIR = ".modelsync"
RECORD_VERSION = 1
JOURNAL_SUFFIX = ".journal"


def record_path(target_root: Path, lock: Path) -> Path:
    """Where the record of `lock`'s placements in `target_root` lives."""
    key = hashlib.sha256(os.path.normpath(lock.absolute()).encode("utf-8")).hexdigest()[:16]
    return target_root / RECORD_DIR / f"placed-{key}.json"


def _bad(path: Path, why: str) -> UsageError:
    return UsageError(
        f"{path}: unreadable record of placed files ({why})",
        hint="delete it and run `modelsync sync` again (linked files are recognised again; "
        "copies become yours and are left in place)",
    )


def journal_path(record: Path) -> Path:
    """Where placements are journaled while sync writes to `record`'s target dir."""
    return record.with_name(record.name + JOURNAL_SUFFIX)


def _placement(e: Any) -> Placement:
    return Placement(
        sha256=str(e["sha256"]),
        size=int(e["size"]),
        mode=LinkMode(e["mode"]),
        inode=int(e["inode"]),
        mtime_ns=int(e["mtime_ns"]),
    )


def placed_path(target_root: Path, rel: str) -> Path | None:
    """Where the entry `<model>/<path>` lies in `target_root`; None if it would lie outside."""
    model, _, inner = rel.partition("/")
    try:
        return target_of(target_root, model, inner)
    except UsageError:
        return None


def still_placed(target_root: Path, rel: str, placement: Placement) -> bool:
    """Whether lstat() still sees exactly what sync placed at `rel` (size, inode, mtime)."""
    where = placed_path(target_root, rel)
    try:
        st = os.lstat(where) if where is not None else None
    except OSError:
        return False
    return st is not None and (st.st_size, st.st_ino, st.st_mtime_ns) == (
        placement.size,
        placement.inode,
        placement.mtime_ns,
    )


def _journaled(record: Path) -> tuple[dict[str, Placement], LinkMode | None]:
    """The journaled placements that were renamed into place (a torn last line is skipped)."""
    try:
        lines = journal_path(record).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return {}, None
    except OSError as err:
        raise _bad(journal_path(record), str(err)) from err
    target_root = record.parent.parent
    found: dict[str, Placement] = {}
    mode = None
    for line in lines:
        try:
            data = json.loads(line)
            rel, placement = str(data["rel"]), _placement(data)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # the line a kill cut short: its rename never happened
        if still_placed(target_root, rel, placement):
            found[rel], mode = placement, placement.mode
    return found, mode


def _no_symlinks(record: Path, *, mine: bool) -> None:
    """Refuse a records folder, record or journal that is a symlink (or a folder that is not
    one): a cloned project can commit them, aimed at a folder a shell sources or a file that
    sync would append its journal to. With `mine`, refuse a record or journal another user
    owns (root aside): in a target dir shared between users, its lines could claim this user's
    files for removal."""
    for path in (record.parent, record, journal_path(record)):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode) or (path == record.parent and not stat.S_ISDIR(st.st_mode)):
            raise _bad(
                path, "a symlink or not a folder: sync writes records only inside the target dir"
            )
        if mine and path != record.parent and st.st_uid not in (0, os.geteuid()):
            raise _bad(path, f"owned by user {st.st_uid}, not by you: it may claim your files")


def read_record(path: Path, *, mine: bool = True) -> tuple[dict[str, Placement], LinkMode | None]:
    """The placements recorded at `path` (by `<model>/<path>`), with those a killed sync
    journaled, and the last mode used; `mine=False` for another project's record, read only
    for what it keeps."""
    _no_symlinks(path, mine=mine)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {"version": RECORD_VERSION}
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _bad(path, str(err)) from err
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        raise _bad(path, f"expected a version {RECORD_VERSION} object")
    try:
        entries = {str(rel): _placement(e) for rel, e in data.get("files", {}).items()}
        mode = LinkMode(data["mode"]) if data.get("mode") else None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise _bad(path, f"bad entry: {err}") from err
    journaled, journal_mode = _journaled(path)
    entries.update(journaled)
    return entries, journal_mode or mode


def record_files(folder: Path) -> list[Path]:
    """Every record in a target's `.modelsync` folder, those only a journal holds so far too."""
    try:
        names = {p.name for p in folder.iterdir()}
    except OSError:
        return []
    records = {n.removesuffix(JOURNAL_SUFFIX) for n in names if n.startswith("placed-")}
    return [folder / n for n in sorted(records) if n.endswith(".json")]


def claimed_elsewhere(path: Path) -> set[str]:
    """Paths that the other records in the same folder (other projects sharing the target dir)
    also list: a stale placement one of them still wants is never removed."""
    claimed: set[str] = set()
    for other in record_files(path.parent):
        if other != path:
            entries, _mode = read_record(other, mine=False)
            claimed.update(entries)
    return claimed


def placed_blobs(target_root: Path) -> list[tuple[str, str, bool]]:
    """(sha256, placed file, live) for every entry of every record in `target_root`; live: the
    file is still what sync placed (stat only), so its blob is still linked or in use there."""
    found = []
    for record in record_files(target_root / RECORD_DIR):
        entries, _mode = read_record(record, mine=False)
        for rel, placement in sorted(entries.items()):
            live = still_placed(target_root, rel, placement)
            found.append((placement.sha256, str(target_root / rel), live))
    return found


class Journal:
    """Appends each placement, fsynced, to the journal beside `record` before its rename."""

    def __init__(self, record: Path) -> None:
        self.path = journal_path(record)
        self._fd: int | None = None
        self._torn = False

    def add(self, rel: str, sha256: str, mode: LinkMode, st: os.stat_result) -> None:
        """Journal that `rel` is about to become the file `st` describes (rename keeps it)."""
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
            self._fd = os.open(self.path, flags, 0o644)
            atomic.fsync_dir(self.path.parent)
            self._torn = _ends_torn(self._fd)
        entry = _entry(Placement(sha256, st.st_size, mode, st.st_ino, st.st_mtime_ns))
        line = json.dumps({"rel": rel, **entry}, sort_keys=True) + "\n"
        # After a line an earlier crash cut short, start a new one: appended to it, this
        # entry would be unreadable and its file forgotten.
        data = memoryview((("\n" if self._torn else "") + line).encode("utf-8"))
        self._torn = True  # until the whole line is written
        while data:  # a short write (disk full) raises on the rest, before the rename
            data = data[os.write(self._fd, data) :]
        self._torn = False
        os.fdatasync(self._fd)

    def close(self) -> None:
        """Stop appending (the journal stays until the record is written)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()


def _ends_torn(fd: int) -> bool:
    """Whether the file at `fd` is not empty and its last byte is not a newline."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _entry(p: Placement) -> dict[str, object]:
    return {
        "sha256": p.sha256,
        "size": p.size,
        "mode": p.mode.value,
        "inode": p.inode,
        "mtime_ns": p.mtime_ns,
    }


def render_record(lock: Path, entries: Mapping[str, Placement], mode: LinkMode | None) -> str:
    """The record's text: sorted, fixed keys, one entry per line."""
    files = {rel: _entry(p) for rel, p in sorted(entries.items())}
    head = {
        "generated-by": "modelsync sync: the files it placed here for this lock; do not edit",
        "lock": os.path.normpath(lock.absolute()),
        "version": RECORD_VERSION,
        "mode": mode.value if mode else None,
    }
    lines = [json.dumps(head, sort_keys=True)[:-1] + ', "files": {']
    body = [
        f"  {json.dumps(rel)}: {json.dumps(entry, sort_keys=True)}" for rel, entry in files.items()
    ]
    lines.append(",\n".join(body))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def write_record(
    path: Path, lock: Path, entries: Mapping[str, Placement], mode: LinkMode | None
) -> None:
    """Replace the record atomically (or delete it when nothing is placed any more), then drop
    the journal it now covers."""
    if entries:
        text = render_record(lock, entries, mode)
        try:
            same = path.read_text(encoding="utf-8") == text
        except (FileNotFoundError, UnicodeDecodeError):
            same = False
        if not same:
            atomic.write_text(path, text)
    else:
        path.unlink(missing_ok=True)
    journal_path(path).unlink(missing_ok=True)
    if not entries:
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when no other project's record is left
