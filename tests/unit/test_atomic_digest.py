"""Atomic writes and digests, on real files."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from modelsync import atomic, digest


def test_write_bytes_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    """The target holds the new bytes and no temp file remains beside it."""
    target = tmp_path / "sub" / "f.txt"
    atomic.write_text(target, "old")
    atomic.write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_failed_write_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the rename never happens, the old content stays and the temp file is removed."""
    target = tmp_path / "f.txt"
    target.write_text("old")

    def boom(_self: Path, _target: Path) -> Path:
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic.write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_sha256_file_matches_hashlib_across_chunk_boundaries(tmp_path: Path) -> None:
    """Chunked, page-aligned hashing equals hashlib over the whole content."""
    data = os.urandom(3 * digest.CHUNK + 123)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert digest.sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert digest.sha256_file(path, chunk=4096) == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("value", "ok"),
    [("a" * 64, True), ("A" * 64, False), ("a" * 63, False), ("g" * 64, False)],
)
def test_is_sha256(value: str, *, ok: bool) -> None:
    """Only 64 lowercase hex digits name a blob."""
    assert digest.is_sha256(value) is ok
