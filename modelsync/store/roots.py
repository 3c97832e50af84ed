"""The locks that synced from a store: `<store>/locks.d/<id>.json`, the roots `gc` keeps.

Each entry names one project's `models.lock` (absolute), its target dir, and the blobs that
lock listed when it last synced (digest → `repo/path` names). `gc` keeps every blob a
registered lock still lists, and every blob the placement records in its target dir link to.
When a lock is gone (the project was moved or deleted, gc cannot tell which), its entry is
kept with the blobs it last listed, and reported, until `gc --forget-missing` drops it: a moved
project's symlinks never dangle. Entries written before the blob list existed load with
`blobs` None (unknown).

`import` registers the bundle's lock too, copied to `<store>/imports/<sha256>.lock` (no target),
so a `gc` before the `sync --offline` that places them keeps the imported blobs. That hold ends
when a registered lock lists all of them (the sync took over) or at `gc --forget-missing`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelsync import atomic
from modelsync.digest import is_sha256
from modelsync.lockfile.model import Lockfile
from modelsync.store.layout import StoreLayout

Named = Mapping[str, tuple[str, ...]]
"""Blob digest → the `repo/path` names it is known by."""


@dataclass(frozen=True, slots=True)
class Root:
    """One registered lock."""

    entry: Path
    """The registration file in `locks.d/`."""
    lock: Path
    target: Path | None
    blobs: Named | None = None
    """What the lock listed when it last synced; None: registered before this was kept."""

    @property
    def imported(self) -> bool:
        """Whether this is an imported bundle's lock (`register_import`)."""
        return self.lock.parent == StoreLayout(self.entry.parent.parent).imports_dir


def named_blobs(lock: Lockfile) -> dict[str, tuple[str, ...]]:
    """Every blob `lock` lists (all models, all profiles) with its `repo/path` names."""
    names: dict[str, set[str]] = {}
    for model in lock.models:
        for file in model.files:
            where = f"{model.repo}/{file.path}" if model.repo else model.url or model.name
            names.setdefault(file.sha256, set()).add(where)
    return {sha: tuple(sorted(found)) for sha, found in sorted(names.items())}


def _entry_path(layout: StoreLayout, lock: Path) -> Path:
    key = hashlib.sha256(str(lock).encode("utf-8")).hexdigest()[:32]
    return layout.roots_dir / f"{key}.json"


def _text(lock: Path, target: Path | None, blobs: Named) -> str:
    data = {
        "lock": str(lock),
        "target": str(target) if target is not None else None,
        "blobs": {k: list(v) for k, v in blobs.items()},
    }
    return json.dumps(data, sort_keys=True) + "\n"


def absolute(path: Path) -> Path:
    """How a registration names a path: absolute and normalized (symlinks kept)."""
    return Path(os.path.normpath(path.absolute()))


def is_registered(layout: StoreLayout, lock_path: Path, target: Path) -> bool:
    """Whether the store already lists this lock with this target (one small read)."""
    lock_path, target = absolute(lock_path), absolute(target)
    try:
        data = json.loads(_entry_path(layout, lock_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and (data.get("lock"), data.get("target")) == (
        str(lock_path),
        str(target),
    )


def register(layout: StoreLayout, lock_path: Path, target: Path, lock: Lockfile) -> None:
    """List `lock_path` (its target dir, and the blobs `lock` lists) as a root of the store;
    atomic, and no write when the entry already says exactly that."""
    lock_path, target = absolute(lock_path), absolute(target)
    blobs = named_blobs(lock)
    _write(_entry_path(layout, lock_path), _text(lock_path, target, blobs))
    if layout.imports_dir.is_dir():
        for root in registered(layout):
            if root.imported and root.blobs is not None and root.blobs.keys() <= blobs.keys():
                drop(root)  # this lock keeps every blob the import brought


def register_import(layout: StoreLayout, lock_text: bytes, lock: Lockfile) -> None:
    """Keep an imported bundle's blobs until a sync registers a lock listing them: its lock
    is copied into the store and registered without a target (`gc` reads it as any lock)."""
    blobs = named_blobs(lock)
    held = (
        r.blobs
        for r in registered(layout)
        if not r.imported and r.blobs is not None and r.lock.is_file()
    )
    if any(blobs.keys() <= known.keys() for known in held):
        return  # a synced lock keeps them already (e.g. the same bundle imported again)
    copy = layout.imports_dir / f"{hashlib.sha256(lock_text).hexdigest()}.lock"
    if not copy.is_file():
        atomic.write_bytes(copy, lock_text)
    _write(_entry_path(layout, copy), _text(copy, None, blobs))


def _write(entry: Path, text: str) -> None:
    """Write a registration atomically; no write when it already says exactly that."""
    try:
        if entry.read_text(encoding="utf-8") == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    atomic.write_text(entry, text)


def _blobs(data: object) -> Named | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise TypeError("blobs: expected an object")
    named = {str(k): tuple(str(n) for n in v) for k, v in data.items() if isinstance(v, list)}
    if len(named) != len(data) or not all(is_sha256(k) for k in named):
        raise ValueError("blobs: expected sha256 digests with lists of names")
    return named


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
            blobs = _blobs(data.get("blobs"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            roots.append(Root(entry, entry, None))
            continue
        roots.append(Root(entry, lock, target, blobs))
    return roots


def drop(root: Root) -> None:
    """Forget a registration (its lock is gone, or it is an import no longer needed)."""
    root.entry.unlink(missing_ok=True)
    if root.imported:
        root.lock.unlink(missing_ok=True)
