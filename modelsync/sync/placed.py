"""The record of what one project's sync placed in a target dir:
`<target>/.modelsync/placed-<id>.json`, one per lock (the id is a digest of the lock's path).

Only paths in this record are ever removed as stale, and only while stat() still sees exactly
what sync placed (size, inode, mtime), so a file the user put there, one that changed since, or
one another project placed in a shared target dir is never deleted. The record lives in the
target dir so that it follows the files, is written atomically (temp + fsync + rename) and
deterministically (sorted keys), and carries a format version.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from modelsync import atomic
from modelsync.errors import UsageError
from modelsync.sync.model import LinkMode, Placement

RECORD_DIR = ".modelsync"
RECORD_VERSION = 1


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


def read_record(path: Path) -> tuple[dict[str, Placement], LinkMode | None]:
    """The placements recorded at `path` (by `<model>/<path>`) and the last mode used."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _bad(path, str(err)) from err
    if not isinstance(data, dict) or data.get("version") != RECORD_VERSION:
        raise _bad(path, f"expected a version {RECORD_VERSION} object")
    try:
        entries = {
            str(rel): Placement(
                sha256=str(e["sha256"]),
                size=int(e["size"]),
                mode=LinkMode(e["mode"]),
                inode=int(e["inode"]),
                mtime_ns=int(e["mtime_ns"]),
            )
            for rel, e in data.get("files", {}).items()
        }
        mode = LinkMode(data["mode"]) if data.get("mode") else None
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise _bad(path, f"bad entry: {err}") from err
    return entries, mode


def claimed_elsewhere(path: Path) -> set[str]:
    """Paths that the other records in the same folder (other projects sharing the target dir)
    also list: a stale placement one of them still wants is never removed."""
    claimed: set[str] = set()
    try:
        others = [p for p in path.parent.glob("placed-*.json") if p != path]
    except OSError:
        return claimed
    for other in others:
        entries, _mode = read_record(other)
        claimed.update(entries)
    return claimed


def render_record(lock: Path, entries: Mapping[str, Placement], mode: LinkMode | None) -> str:
    """The record's text: sorted, fixed keys, one entry per line."""
    files = {
        rel: {
            "sha256": p.sha256,
            "size": p.size,
            "mode": p.mode.value,
            "inode": p.inode,
            "mtime_ns": p.mtime_ns,
        }
        for rel, p in sorted(entries.items())
    }
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
    """Replace the record atomically (or delete it when nothing is placed any more)."""
    if not entries:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            path.parent.rmdir()  # only when no other project's record is left
        return
    text = render_record(lock, entries, mode)
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic.write_text(path, text)
