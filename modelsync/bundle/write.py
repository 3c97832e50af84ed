"""Write a bundle: one deterministic tar file, or a folder that a re-run completes.

* A tar (`PATH.tar`) is written under a temporary name beside it and renamed when complete:
  the path holds the old bundle or the whole new one. Its members are sorted (index, lock,
  blobs by digest) with mtime 0, uid/gid 0, no owner names and mode 0444, in the POSIX (pax)
  format, which carries sizes past 8 GiB: the same lock gives the same bytes. Uncompressed:
  model weights do not compress, and an import seeks over members it does not need.
* A folder is written in place, resumable: a 100 GB bundle to a USB disk that was cut off
  keeps every blob already copied (each one was written under a temporary name, fsynced and
  renamed) and the next run copies only the rest; a copy already there is read back and kept
  only if it hashes to its name, so the next run also repairs a damaged one. `bundle.json`
  is removed first and written last, so a folder without it is not yet a
  bundle and `import` says so. Blobs are hardlinked from the store where the folder is on its
  filesystem (no bytes copied), else copied; files no longer in the bundle are removed.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelsync import atomic
from modelsync.bundle.model import BLOB_DIR, INDEX, LOCK, blob_member, member_kind
from modelsync.digest import sha256_file
from modelsync.errors import UsageError
from modelsync.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Source:
    """A blob to put into the bundle, and its file in the store."""

    sha256: str
    size: int
    path: Path


@dataclass(frozen=True, slots=True)
class Written:
    """What writing a bundle did: blobs hardlinked, copied, already there; files removed."""

    linked: int = 0
    copied: int = 0
    present: int = 0
    removed: int = 0


def _info(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o444
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tar(dest: Path, index: bytes, lock: bytes, blobs: Sequence[Source]) -> Written:
    """Write the bundle as one tar at `dest`, atomically."""
    if dest.is_dir():
        raise UsageError(
            f"--bundle {dest}: a folder, not a tar file",
            hint="give a path ending in .tar that is not a folder, or a folder path without .tar",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.addfile(_info(INDEX, len(index)), io.BytesIO(index))
                tar.addfile(_info(LOCK, len(lock)), io.BytesIO(lock))
                for blob in sorted(blobs, key=lambda b: b.sha256):
                    with blob.path.open("rb") as src:
                        tar.addfile(_info(blob_member(blob.sha256), blob.size), src)
                    log.info("bundle.blob", blob=blob.sha256, bytes=blob.size, how="copied")
            raw.flush()
            os.fsync(raw.fileno())
        temp.chmod(0o644)
        temp.replace(dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    atomic.fsync_dir(dest.parent)
    return Written(copied=len(blobs))


def write_dir(dest: Path, index: bytes, lock: bytes, blobs: Sequence[Source]) -> Written:
    """Write (or complete) the bundle as the folder `dest`."""
    _check_folder(dest)
    folder = dest / BLOB_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (dest / INDEX).unlink(missing_ok=True)  # not a bundle again until it is complete
    atomic.fsync_dir(dest)
    linked = copied = present = removed = 0
    wanted = {b.sha256 for b in blobs}
    for blob in sorted(blobs, key=lambda b: b.sha256):
        target = dest / blob_member(blob.sha256)
        if _holds(target, blob):
            present += 1
            continue
        if atomic.hardlink(blob.path, target):
            linked += 1
            how = "hardlinked"
        else:
            atomic.copy_file(blob.path, target, mode=0o444)
            copied += 1
            how = "copied"
        log.info("bundle.blob", blob=blob.sha256, bytes=blob.size, how=how)
    for entry in folder.iterdir():
        if entry.name not in wanted:  # an earlier bundle's, or a temp of a cut-off run
            entry.unlink()
            removed += 1
    for entry in dest.iterdir():
        if _is_temp(entry.name):  # bundle.json or models.lock of a cut-off run
            entry.unlink()
    atomic.write_bytes(dest / LOCK, lock)
    atomic.write_bytes(dest / INDEX, index)
    return Written(linked, copied, present, removed)


def _holds(target: Path, blob: Source) -> bool:
    """Whether the bundle's file already is the blob: the store's own file (a hardlink), or,
    on another disk, a file of its size whose bytes hash to its name. Size alone would keep a
    damaged copy that the next export is meant to repair."""
    try:
        st, src = target.lstat(), blob.path.stat()
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(st.st_mode) or st.st_size != blob.size:
        return False
    if (st.st_dev, st.st_ino) == (src.st_dev, src.st_ino):
        return True
    return st.st_dev != src.st_dev and sha256_file(target) == blob.sha256  # else: link again


def _is_temp(name: str) -> bool:
    """A temporary file of ours (atomic writes: `.<name>.<random>.tmp`)."""
    return name.startswith(".") and name.endswith(".tmp")


def _check_folder(dest: Path) -> None:
    """A bundle folder is new, empty, or holds only what a bundle holds: export never
    removes files from a folder it did not write."""
    if dest.exists() and not dest.is_dir():
        raise UsageError(
            f"--bundle {dest}: exists and is not a folder",
            hint="give a new folder, or a path ending in .tar for one tar file",
        )
    if not dest.is_dir():
        return
    for entry in dest.rglob("*"):
        rel = entry.relative_to(dest).as_posix()
        if rel in ("blobs", BLOB_DIR) and entry.is_dir() and not entry.is_symlink():
            continue
        if member_kind(rel) is not None or (
            entry.parent in (dest, dest / BLOB_DIR) and _is_temp(entry.name)
        ):
            continue
        raise UsageError(
            f"--bundle {dest}: the folder holds {rel}, which no bundle holds",
            hint="give a new or empty folder (export writes into it and removes what the "
            "bundle no longer needs)",
        )
