"""Git and LFS object ids, the LFS storage rule and commit ids: pure functions."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import PurePosixPath

LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
"""Files above this size go to LFS whatever their name (the Hub refuses larger regular files)."""

BINARY_SNIFF_BYTES = 8192
"""A NUL byte in this many leading bytes marks a file binary, hence LFS (git's heuristic)."""

LFS_SUFFIXES = frozenset(
    {
        ".7z", ".arrow", ".bin", ".bz2", ".ckpt", ".ftz", ".gguf", ".gz", ".h5", ".joblib",
        ".mlmodel", ".model", ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb",
        ".pickle", ".pkl", ".pt", ".pth", ".rar", ".safetensors", ".tar", ".tflite", ".tgz",
        ".wasm", ".xz", ".zip", ".zst",
    }
)  # fmt: skip

GITATTRIBUTES = (
    "".join(f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n" for suffix in sorted(LFS_SUFFIXES))
    + "*tfevents* filter=lfs diff=lfs merge=lfs -text\n"
).encode()
"""The `.gitattributes` a new repository starts with, as on the Hub."""

_FILE_MODE = b"100644"
_DIR_MODE = b"40000"


def is_lfs(path: str, size: int, head: bytes) -> bool:
    """Whether a file is stored in LFS: by suffix, by size, or because it looks binary.

    `head` is the start of the content (up to `BINARY_SNIFF_BYTES`); an empty file never is LFS,
    as the client always sends empty files as regular ones.
    """
    if size == 0:
        return False
    if PurePosixPath(path).suffix.lower() in LFS_SUFFIXES or size > LFS_SIZE_THRESHOLD:
        return True
    return b"\0" in head[:BINARY_SNIFF_BYTES]


def git_blob_header(size: int) -> bytes:
    """The header git hashes before a blob's bytes."""
    return b"blob %d\0" % size


def git_blob_oid(data: bytes) -> str:
    """The git blob id of `data`: `sha1("blob <len>\\0" + data)`."""
    return hashlib.sha1(git_blob_header(len(data)) + data, usedforsecurity=False).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The LFS pointer file git stores in place of the content."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def tree_oid(entries: Iterable[tuple[str, str, bool]]) -> str:
    """The git tree id of one folder from `(name, oid hex, is_folder)` of its direct children."""
    # Git orders a folder as if its name ended with "/".
    ordered = sorted(entries, key=lambda e: e[0] + "/" if e[2] else e[0])
    body = b"".join(
        (_DIR_MODE if is_folder else _FILE_MODE) + b" " + name.encode() + b"\0" + bytes.fromhex(oid)
        for name, oid, is_folder in ordered
    )
    return hashlib.sha1(b"tree %d\0" % len(body) + body, usedforsecurity=False).hexdigest()


def commit_id(
    *,
    repo_id: str,
    parent: str | None,
    files: Iterable[tuple[str, str, int, bool]],
    title: str,
    message: str,
) -> str:
    """A stable 40-hex commit id from the repository, parent, tree and text, never the clock.

    The same directory imported into the same repository gives the same id on every run and
    machine. `files` holds `(path, sha256, size, lfs)`.
    """
    canonical = json.dumps(
        ["modelsync-commit/1", repo_id, parent, title, message, sorted(files)],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha1(canonical.encode(), usedforsecurity=False).hexdigest()
