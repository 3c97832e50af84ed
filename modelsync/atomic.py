"""Atomic file writes: temp file in the same directory, fsync, rename, fsync the directory.

A crash at any instant leaves either the old file or the new one, never a mix (design.md §10).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable; a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _replace(path, mode, lambda handle: handle.write(data))


def _replace(path: Path, mode: int, fill: Callable[[BinaryIO], object]) -> None:
    """Write a temp file beside `path` with `fill`, fsync it, rename it over `path`."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            fill(handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    """Replace `path` with UTF-8 `text` atomically."""
    write_bytes(path, text.encode("utf-8"), mode=mode)


def hardlink(source: Path, target: Path) -> bool:
    """Make `target` a hardlink of `source`, replacing it atomically; False where the
    filesystem cannot (another device, no hardlinks there)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError as err:
        if err.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            return False
        raise
    try:
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return True


def copy_file(source: Path, target: Path, *, mode: int = 0o644) -> None:
    """Replace `target` with a copy of `source` atomically."""
    with source.open("rb") as src:
        _replace(target, mode, lambda out: shutil.copyfileobj(src, out, 1 << 20))
