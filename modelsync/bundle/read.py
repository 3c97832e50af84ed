"""Read a bundle from untrusted media: a folder or an uncompressed tar, never extracted.

Only the names a bundle holds are read (`bundle.json`, `models.lock`, `blobs/sha256/<hex>`),
and only as regular files:
* tar: the member headers are scanned once (seeking over the data); a member with another
  name, `../` or an absolute path, a link, device or sparse file, or a name given twice is
  never read. A tar cut short keeps what precedes the cut: a member whose data is cut fails
  when read, the ones after it are missing.
* folder: every name is opened relative to the bundle folder's descriptor with `O_NOFOLLOW`
  on each part, so a symlink in the bundle never leads the import to a file outside it; a FIFO
  or device is refused after the open (`O_NONBLOCK`: opening a FIFO does not wait).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from modelsync.bundle.model import (
    BLOB_DIR,
    MAX_META_BYTES,
    Refusal,
    blob_member,
    member_kind,
)
from modelsync.errors import IntegrityError, UsageError
from modelsync.paths import open_below
from modelsync.store.blobs import Readable

_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)


class Refused(Exception):  # noqa: N818 - one blob's outcome, caught by the importer
    """This blob cannot be read from the bundle; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Bundle(Protocol):
    """A bundle opened for reading."""

    where: str
    """How messages name it (the path given)."""
    ignored: tuple[Refusal, ...]
    """Members that are not part of a bundle, never read."""

    def meta(self, name: str) -> bytes:
        """`bundle.json` or `models.lock`, whole; IntegrityError if absent or not a file."""
        ...

    def blob(self, sha256: str, size: int) -> contextlib.AbstractContextManager[Readable]:
        """The blob's bytes as a stream; Refused when it is absent, not a regular file or not
        `size` bytes long."""
        ...


def _missing(where: str, name: str, why: str) -> IntegrityError:
    return IntegrityError(
        f"{where}: {name} {why}; not a complete bundle",
        hint="export the bundle again on the connected machine (`modelsync export --bundle`)",
    )


@dataclass(slots=True)
class TarBundle:
    """A bundle in one uncompressed tar file."""

    where: str
    tar: tarfile.TarFile
    members: dict[str, tarfile.TarInfo] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)
    """Names a bundle holds whose members cannot be read, and why."""
    ignored: tuple[Refusal, ...] = ()
    cut: bool = False

    @classmethod
    def scan(cls, where: str, tar: tarfile.TarFile) -> TarBundle:
        """Read every member header (no data) and sort out what may be read."""
        bundle = cls(where, tar)
        ignored = []
        while True:
            try:
                info = tar.next()
            except tarfile.TarError:
                bundle.cut = True
                break
            if info is None:
                break
            name = info.name
            if member_kind(name) is None:
                ignored.append(Refusal(name, "not a name a bundle holds"))
            elif name in bundle.members or name in bundle.problems:
                bundle.members.pop(name, None)
                bundle.problems[name] = "appears twice in the tar"
            elif info.type not in _REGULAR:
                bundle.problems[name] = "is not a regular file in the tar (a link or device)"
            else:
                bundle.members[name] = info
        bundle.ignored = tuple(ignored)
        return bundle

    def meta(self, name: str) -> bytes:
        info = self.members.get(name)
        if info is None:
            cut = " (the tar is cut short)" if self.cut else ""
            why = self.problems.get(name) or f"is missing{cut}"
            raise _missing(self.where, name, why)
        if info.size > MAX_META_BYTES:
            raise _missing(self.where, name, f"claims {info.size} bytes, more than a bundle's")
        handle = self.tar.extractfile(info)
        assert handle is not None  # a regular member always has data
        try:
            with handle:
                return handle.read(MAX_META_BYTES + 1)
        except (tarfile.TarError, OSError) as err:
            raise _missing(self.where, name, f"cannot be read ({err})") from None

    @contextlib.contextmanager
    def blob(self, sha256: str, size: int) -> Iterator[Readable]:
        name = blob_member(sha256)
        info = self.members.get(name)
        if info is None:
            cut = " (the tar is cut short)" if self.cut else ""
            raise Refused(self.problems.get(name) or f"is missing from the bundle{cut}")
        if info.size != size:
            raise Refused(f"the tar holds {info.size} bytes of it, bundle.json says {size}")
        handle = self.tar.extractfile(info)
        assert isinstance(handle, io.BufferedReader)  # a regular member's data
        with handle:
            try:
                yield handle
            except tarfile.TarError as err:  # its data ends before its header says
                raise Refused(f"is cut short in the tar ({err})") from None


@dataclass(slots=True)
class DirBundle:
    """A bundle in a folder, read through its descriptor."""

    where: str
    fd: int
    ignored: tuple[Refusal, ...] = ()

    def _open(self, name: str) -> int:
        """Open `name` (relative, `/`-separated) under the bundle without following any
        symlink; Refused naming what is wrong."""
        try:
            fd = open_below(self.fd, name.split("/"))
        except FileNotFoundError:
            raise Refused("is missing from the bundle") from None
        except OSError as err:
            if err.errno in (errno.ELOOP, errno.ENOTDIR):
                raise Refused("is a symbolic link in the bundle (not followed)") from None
            raise Refused(f"cannot be opened: {err.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise Refused("is not a regular file")
        return fd

    def meta(self, name: str) -> bytes:
        try:
            fd = self._open(name)
        except Refused as err:
            raise _missing(self.where, name, err.reason) from None
        with os.fdopen(fd, "rb") as handle:
            return handle.read(MAX_META_BYTES + 1)

    @contextlib.contextmanager
    def blob(self, sha256: str, size: int) -> Iterator[Readable]:
        fd = self._open(blob_member(sha256))
        held = os.fstat(fd).st_size
        if held != size:
            os.close(fd)
            raise Refused(f"the bundle holds {held} bytes of it, bundle.json says {size}")
        with io.FileIO(fd, "rb") as handle:
            yield handle


@contextlib.contextmanager
def open_bundle(path: Path) -> Iterator[Bundle]:
    """Open the bundle at `path`: a folder, or a tar file; UsageError for anything else."""
    where = str(path)
    if path.is_dir():
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            yield DirBundle(where, fd)
        finally:
            os.close(fd)
        return
    if not path.is_file():
        raise UsageError(
            f"{where}: no such bundle",
            hint="give the folder or .tar file that `modelsync export --bundle` wrote",
        )
    try:
        tar = tarfile.open(path, "r:")  # noqa: SIM115 - closed below; never extracted
    except (tarfile.TarError, OSError) as err:
        raise UsageError(
            f"{where}: not a bundle: not an uncompressed tar ({err})",
            hint=f"give the folder or .tar file that `modelsync export --bundle` wrote "
            f"(a compressed one: decompress it first; a bundle folder holds {BLOB_DIR}/)",
        ) from None
    with tar:
        yield TarBundle.scan(where, tar)
