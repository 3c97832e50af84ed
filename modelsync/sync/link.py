"""Placing a blob at a target path: reflink > hardlink > symlink > copy, always temp + rename.

The mode is probed once per target directory (design.md section 3); a reader of the target never
sees a half-written file, because every placement is built under a temporary name beside the
target and renamed over it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from modelsync.store.layout import PLACE_TEMP_SUFFIX
from modelsync.sync.model import LinkMode

# linux/fs.h: _IOW(0x94, 9, int) — share the source's extents (btrfs, XFS, bcachefs).
_FICLONE = 0x40049409


__all__ = [
    "AUTO_ORDER",
    "TEMP_SUFFIX",
    "LinkMode",
    "place",
    "probe",
    "refers_to",
    "unlink_placed",
]

TEMP_SUFFIX = PLACE_TEMP_SUFFIX
"""Placements are built as `.<name>.<8 hex>.modelsync-tmp` beside the target, then renamed."""

AUTO_ORDER = (LinkMode.REFLINK, LinkMode.HARDLINK, LinkMode.SYMLINK, LinkMode.COPY)


def _temp_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def _reflink(blob: Path, dest: Path) -> None:
    with blob.open("rb") as src, dest.open("xb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        except OSError:
            dst.close()
            dest.unlink(missing_ok=True)
            raise


def _copy(blob: Path, dest: Path) -> None:
    with blob.open("rb") as src, dest.open("xb") as dst:
        shutil.copyfileobj(src, dst, length=1 << 20)
        dst.flush()
        os.fsync(dst.fileno())


def _make(blob: Path, dest: Path, mode: LinkMode) -> None:
    if mode is LinkMode.REFLINK:
        _reflink(blob, dest)
    elif mode is LinkMode.HARDLINK:
        dest.hardlink_to(blob)
    elif mode is LinkMode.SYMLINK:
        dest.symlink_to(blob.resolve())
    else:
        _copy(blob, dest)
    if mode in (LinkMode.REFLINK, LinkMode.COPY):
        dest.chmod(0o444)


def _nothing(_st: os.stat_result) -> None:
    pass


def place(
    blob: Path,
    target: Path,
    mode: LinkMode,
    before_rename: Callable[[os.stat_result], None] = _nothing,
) -> None:
    """Make `target` refer to `blob` by `mode`, replacing what was there in one rename.

    `before_rename` gets the finished placement's lstat(), which the rename keeps: sync
    journals it there, so no kill can leave a placement it has no record of."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_beside(target)
    try:
        _make(blob, temp, mode)
        before_rename(os.lstat(temp))
        temp.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        raise


def probe(blob: Path, target_dir: Path) -> LinkMode:
    """The best mode that works from the store to `target_dir`, found by trying each once."""
    target_dir.mkdir(parents=True, exist_ok=True)
    for mode in AUTO_ORDER:
        temp = _temp_beside(target_dir / "probe")
        try:
            _make(blob, temp, mode)
        except OSError:
            if mode is LinkMode.COPY:
                raise  # nothing left to fall back to: a read-only or full target dir
            continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
        return mode
    raise AssertionError("copy always works or raises")


def refers_to(target: Path, blob_stat: os.stat_result, mode: LinkMode, blob: Path) -> bool:
    """Whether `target` is still the placement of `blob` made by `mode` (stat only, no read)."""
    try:
        if mode is LinkMode.SYMLINK:
            return target.is_symlink() and target.readlink() == blob.resolve()
        st = target.stat(follow_symlinks=False)
    except OSError:
        return False
    if mode is LinkMode.HARDLINK:
        return st.st_ino == blob_stat.st_ino and st.st_dev == blob_stat.st_dev
    return st.st_size == blob_stat.st_size


def _open_folder(root: Path, parts: list[str], parent_fd: int) -> int:
    """Open `root/parts…` relative to its parent's fd, refusing a symlink (or non-folder)."""
    try:
        return os.open(parts[-1], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
    except OSError as err:
        if err.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        why = "a symlink or not a folder: never followed out of the target dir"
        raise NotADirectoryError(err.errno, why, str(root.joinpath(*parts))) from err


def unlink_placed(root: Path, target: Path, expect: tuple[int, int, int]) -> bool:
    """Unlink `target` (a path inside `root`) if lstat() still sees `expect` (size, inode,
    mtime_ns), then prune the folders it leaves empty; returns whether it was there to remove.

    The walk from `root` opens each folder relative to its parent with O_NOFOLLOW: a path
    through a symlinked folder is refused (NotADirectoryError), so no record entry, stale or
    forged, can delete a file outside the target dir, even if a folder is swapped meanwhile.
    """
    *folders, name = target.relative_to(root).parts
    fds: list[int] = []
    try:
        try:
            fds.append(os.open(root, os.O_RDONLY | os.O_DIRECTORY))
            for depth in range(len(folders)):
                fds.append(_open_folder(root, folders[: depth + 1], fds[-1]))
            st = os.stat(name, dir_fd=fds[-1], follow_symlinks=False)
        except FileNotFoundError:
            return False
        if (st.st_size, st.st_ino, st.st_mtime_ns) != expect:
            return False
        os.unlink(name, dir_fd=fds[-1])
        for parent_fd, folder in zip(reversed(fds[:-1]), reversed(folders), strict=True):
            try:
                os.rmdir(folder, dir_fd=parent_fd)
            except OSError:
                break
    finally:
        for fd in fds:
            os.close(fd)
    return True
