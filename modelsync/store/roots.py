"""The locks that synced from a store: `<store>/locks.d/<id>.json`, the roots `gc` keeps.

Each entry names one project's `models.lock` (absolute) and its target dir. `gc` keeps every
blob that a registered lock still lists; an entry whose lock no longer exists is dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from modelsync import atomic
from modelsync.store.layout import StoreLayout


@dataclass(frozen=True, slots=True)
class Root:
    """One registered lock."""

    entry: Path
    """The registration file in `locks.d/`."""
    lock: Path
    target: Path | None


def _entry_path(layout: StoreLayout, lock: Path) -> Path:
    key = hashlib.sha256(str(lock).encode("utf-8")).hexdigest()[:32]
    return layout.roots_dir / f"{key}.json"


def _text(lock: Path, target: Path) -> str:
    return json.dumps({"lock": str(lock), "target": str(target)}, sort_keys=True) + "\n"


def _absolute(path: Path) -> Path:
    return Path(os.path.normpath(path.absolute()))


def is_registered(layout: StoreLayout, lock: Path, target: Path) -> bool:
    """Whether the store already lists this lock with this target (one small read)."""
    lock, target = _absolute(lock), _absolute(target)
    try:
        return _entry_path(layout, lock).read_text(encoding="utf-8") == _text(lock, target)
    except (OSError, UnicodeDecodeError):
        return False


def register(layout: StoreLayout, lock: Path, target: Path) -> None:
    """List `lock` (and its target dir) as a root of the store; atomic, idempotent."""
    lock, target = _absolute(lock), _absolute(target)
    if not is_registered(layout, lock, target):
        atomic.write_text(_entry_path(layout, lock), _text(lock, target))


def registered(layout: StoreLayout) -> list[Root]:
    """Every registration, unreadable ones included (with `lock` pointing at the entry)."""
    roots = []
    try:
        entries = sorted(layout.roots_dir.glob("*.json"))
    except OSError:
        return []
    for entry in entries:
        try:
            data = json.loads(entry.read_text(encoding="utf-8"))
            lock = Path(data["lock"])
            target = Path(data["target"]) if data.get("target") else None
        except (OSError, ValueError, KeyError, TypeError):
            roots.append(Root(entry, entry, None))
            continue
        roots.append(Root(entry, lock, target))
    return roots


def drop(root: Root) -> None:
    """Forget a registration (its lock is gone)."""
    root.entry.unlink(missing_ok=True)
