"""Review of `serve --root` against a local writer swapping a repository file for a symlink to
a file outside the root while the server looks: the outside file's bytes are never imported."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelsync.server.repos import RepoStore

SECRET = b"-----BEGIN OPENSSH PRIVATE KEY----- not for the LAN\n"
SWAPPER = """
import os, sys
target, secret, spare = sys.argv[1:]
link, plain = spare + ".link", spare + ".plain"
while True:
    os.symlink(secret, link)
    os.replace(link, target)
    with open(plain, "wb") as f:
        f.write(b"public notes\\n")
    os.replace(plain, target)
"""
"""Puts a symlink to the secret, then a plain file, at the target, over and over."""
LOOKS = 300


@pytest.fixture
def swapped(tmp_path: Path) -> Iterator[Path]:
    """`root/org/m/notes.txt`, swapped by a child process; returns the root."""
    secret = tmp_path / "home" / "id_ed25519"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    target = tmp_path / "root" / "org" / "m" / "notes.txt"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"public notes\n")
    before = target.lstat().st_ino
    child = subprocess.Popen(
        [sys.executable, "-c", SWAPPER, str(target), str(secret), str(tmp_path / "spare")]
    )
    try:
        while target.lstat().st_ino == before:  # the child has started swapping
            time.sleep(0.01)
        yield tmp_path / "root"
    finally:
        child.kill()
        child.wait()


def test_a_file_swapped_for_a_symlink_never_imports_the_link_target(swapped: Path) -> None:
    """Over many looks at a file a writer keeps swapping for a symlink to a private file, no
    commit names the private file's digest and no stored blob holds its bytes."""
    secret = hashlib.sha256(SECRET).hexdigest()
    store = RepoStore(swapped)
    for _ in range(LOOKS):
        store.refresh()
    held = {
        entry.sha256
        for repo_id in store.repo_ids()
        for commit in store.list_commits(repo_id)
        for entry in commit.files.values()
    }
    assert secret not in held
    assert not store.blobs.has(secret)
