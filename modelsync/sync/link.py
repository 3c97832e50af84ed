"""Placing a blob at a target path: reflink > hardlink > symlink > copy, always temp + rename.

Which modes a target dir takes is judged without writing there (`supported`: the same mount as
the store for a hardlink, one filesystem of a kind that shares extents for a reflink), so
`status` and `--dry-run` show the mode apply will use; apply falls back to the next mode if the
first placement proves the judgement wrong. A reader of the target never sees a half-written
file: every placement is built under a temporary name beside the target and renamed over it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from modelsync.paths import existing_part
from modelsync.store.layout import PLACE_TEMP_SUFFIX
from modelsync.sync.model import LinkMode

# linux/fs.h: _IOW(0x94, 9, int) — share the source's extents (btrfs, XFS, bcachefs).
_FICLONE = 0x40049409
_REFLINK_FS = frozenset({"btrfs", "xfs", "bcachefs", "ocfs2"})
"""Filesystems where FICLONE may work (XFS only when made with reflink=1: apply falls back)."""
_MOUNTINFO = Path("/proc/self/mountinfo")

__all__ = ["LinkMode", "mount_of", "place", "supported", "unlink_placed"]


def _temp_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.{secrets.token_hex(4)}{PLACE_TEMP_SUFFIX}")


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


def _unescape(field: str) -> str:
    """The kernel writes a space in a mount point as `\\040`."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def mount_of(path: Path, mountinfo: str) -> tuple[str, str, str]:
    """(mount id, fs type, source) of the mount holding `path`; empty strings where unknown."""
    best, found = "", ("", "", "")
    for line in mountinfo.splitlines():
        head, _, tail = line.partition(" - ")
        fields, rest = head.split(" "), tail.split(" ")
        if len(fields) < 5 or len(rest) < 2:
            continue
        point = _unescape(fields[4])
        inside = point == "/" or str(path) == point or str(path).startswith(point + "/")
        if inside and len(point) > len(best):
            best, found = point, (fields[0], rest[0], rest[1])
    return found


def supported(store_dir: Path, target_dir: Path) -> tuple[LinkMode, ...]:
    """The modes from the store to `target_dir`, best first, judged by stat() and the mount
    table only: nothing is written, so `status` may ask too."""
    store, target = existing_part(store_dir), existing_part(target_dir)
    try:
        mountinfo = _MOUNTINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        mountinfo = ""  # not Linux: FICLONE is Linux's, and the device number decides the rest
    store_id, kind, source = mount_of(store, mountinfo)
    target_id, _, target_source = mount_of(target, mountinfo)
    modes = []
    if kind in _REFLINK_FS and source == target_source:
        modes.append(LinkMode.REFLINK)  # btrfs clones across subvolumes and mounts of one disk
    if store.stat().st_dev == target.stat().st_dev and store_id == target_id:
        modes.append(LinkMode.HARDLINK)  # link(2) refuses another mount, even of the same disk
    return (*modes, LinkMode.SYMLINK, LinkMode.COPY)


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
