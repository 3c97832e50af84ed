"""Store building blocks on real files: placement modes, the store lock, the stat cache."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from modelsync.errors import BusyError
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive
from modelsync.store.state import open_state
from modelsync.sync.inventory import file_stat
from modelsync.sync.link import LinkMode, mount_of, place, supported
from modelsync.sync.model import BlobSeen
from modelsync.sync.plan import refers_to_blob


@pytest.fixture
def blob(tmp_path: Path) -> Path:
    """A read-only blob file as the store keeps them."""
    path = tmp_path / "store" / "blobs" / "ab" / "blob"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"weights" * 1000)
    path.chmod(0o444)
    return path


def refers_to(target: Path, blob: Path, mode: LinkMode) -> bool:
    """What the inventory and plan conclude from stat() alone: a link of the blob, or (for a
    copy) a regular file of its size."""
    seen, blob_stat = file_stat(target), file_stat(blob)
    if seen is None or mode is LinkMode.COPY:
        return seen is not None and blob_stat is not None and seen.size == blob_stat.size
    return refers_to_blob(seen, BlobSeen("sha", Path(os.path.realpath(blob)), blob_stat))


def test_probe_finds_hardlinks_on_one_filesystem(blob: Path, tmp_path: Path) -> None:
    """Within one ext4/tmpfs filesystem without reflinks, auto probing picks hardlinks."""
    target_dir = tmp_path / "models"
    modes = supported(blob.parent, target_dir)
    assert modes[0] in (LinkMode.REFLINK, LinkMode.HARDLINK)
    assert modes[-2:] == (LinkMode.SYMLINK, LinkMode.COPY)
    assert not target_dir.exists()  # the probe writes nothing


MOUNTS = "\n".join(
    [
        "22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw",
        "30 22 0:40 / /srv/my\\040disk rw shared:5 - btrfs /dev/sdb rw",
        "31 22 0:41 /sub /srv/other rw - btrfs /dev/sdb rw",
        "broken line",
    ]
)


def test_the_mount_table_names_the_mount_holding_a_path() -> None:
    """The longest mount point that holds the path wins, `\\040` is a space, and a name that
    merely starts like a mount point is not inside it."""
    assert mount_of(Path("/srv/my disk/models"), MOUNTS) == ("30", "btrfs", "/dev/sdb")
    assert mount_of(Path("/srv/my diskette"), MOUNTS) == ("22", "ext4", "/dev/sda1")
    assert mount_of(Path("/srv/other"), MOUNTS) == ("31", "btrfs", "/dev/sdb")
    assert mount_of(Path("/x"), "") == ("", "", "")


@pytest.mark.parametrize("mode", [LinkMode.HARDLINK, LinkMode.SYMLINK, LinkMode.COPY])
def test_place_each_mode_gives_the_blob_bytes(blob: Path, tmp_path: Path, mode: LinkMode) -> None:
    """Every mode yields a target with the blob's bytes, recognised by a stat-only check."""
    target = tmp_path / "models" / "m" / "sub" / "file.gguf"
    place(blob, target, mode)
    assert target.read_bytes() == blob.read_bytes()
    assert refers_to(target, blob, mode)
    assert [p.name for p in target.parent.iterdir()] == ["file.gguf"]


def test_place_replaces_an_old_placement_atomically(blob: Path, tmp_path: Path) -> None:
    """Placing over an existing file swaps it in one rename (no temp file left)."""
    target = tmp_path / "models" / "file.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    place(blob, target, LinkMode.HARDLINK)
    assert target.stat().st_ino == blob.stat().st_ino
    assert [p.name for p in target.parent.iterdir()] == ["file.gguf"]


def test_modified_copy_is_not_the_placement(blob: Path, tmp_path: Path) -> None:
    """A hardlink target replaced by the user's own file no longer refers to the blob."""
    target = tmp_path / "t.gguf"
    place(blob, target, LinkMode.HARDLINK)
    target.unlink()
    target.write_bytes(blob.read_bytes())
    assert not refers_to(target, blob, LinkMode.HARDLINK)


def test_place_where_the_rename_fails_leaves_nothing(blob: Path, tmp_path: Path) -> None:
    """If the final rename fails (the target is a directory), no temp file is left behind."""
    target = tmp_path / "models" / "f"
    (target / "inside").mkdir(parents=True)
    with pytest.raises(OSError, match=r"Is a directory|Directory not empty"):
        place(blob, target, LinkMode.COPY)
    assert [p.name for p in target.parent.iterdir()] == ["f"]


HOLD = """
import sys, time
from pathlib import Path
from modelsync.store.locking import exclusive
with exclusive(Path(sys.argv[1]), wait=True):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_second_run_exits_6_with_no_wait_naming_the_holder(tmp_path: Path) -> None:
    """While another process holds the store lock, --no-wait fails at once naming its pid."""
    lock = tmp_path / "store.lock"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), "5"], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(BusyError) as caught, exclusive(lock, wait=False):
            pass
        holder.kill()
    assert caught.value.exit_code == 6
    assert f"pid {holder.pid}" in caught.value.one_line()


def test_second_run_waits_then_proceeds(tmp_path: Path) -> None:
    """By default a second run waits for the holder to finish, then gets the lock."""
    lock = tmp_path / "store.lock"
    with subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock), "0.5"], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with exclusive(lock, wait=True, poll=0.05):
            # The holder sleeps 0.5 s inside its lock, so getting ours means it let go.
            assert holder.wait(timeout=5) == 0


def test_state_cache_trusts_only_an_unchanged_stat(tmp_path: Path) -> None:
    """A recorded digest is returned while size, mtime and inode match, and not after an edit."""
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    with open_state(tmp_path / "state.db") as state:
        state.record(path, path.stat(), "a" * 64)
        assert state.lookup(path, path.stat()) == "a" * 64
        os.utime(path, ns=(1, 1))
        assert state.lookup(path, path.stat()) is None
        state.record(path, path.stat(), "b" * 64)
        state.forget(path)
        assert state.lookup(path, path.stat()) is None


def test_pending_records_are_trusted_only_in_their_boot(tmp_path: Path) -> None:
    """A record made without fsync is trusted (and settled) in its boot, ignored in another;
    a settled record is trusted in any boot."""
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    db = tmp_path / "state.db"
    with open_state(db, boot="boot-1") as state:
        assert state.defers_fsync
        state.record(path, path.stat(), "a" * 64, on_disk=False)
    with open_state(db, boot="boot-2") as state:
        assert state.lookup(path, path.stat()) is None  # a reboot: hash it again
    with open_state(db, boot="boot-1") as state:
        assert state.lookup(path, path.stat()) == "a" * 64  # fsynced and settled here
    with open_state(db, boot="boot-2") as state:
        assert state.lookup(path, path.stat()) == "a" * 64


def test_a_state_db_from_before_boot_tracking_is_upgraded(tmp_path: Path) -> None:
    """An older state.db without the boot and ctime columns gains them; its records, which
    lack the ctime, vouch for nothing (the file is hashed again), and new records work."""
    path = tmp_path / "blob"
    path.write_bytes(b"abc")
    st = path.stat()
    db = tmp_path / "state.db"
    with sqlite3.connect(db) as old:
        old.execute(
            "CREATE TABLE verified (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
            "mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL, sha256 TEXT NOT NULL)"
        )
        old.execute(
            "INSERT INTO verified VALUES (?, ?, ?, ?, ?)",
            (str(path), st.st_size, st.st_mtime_ns, st.st_ino, "b" * 64),
        )
    old.close()
    with open_state(db, boot="boot-9") as state:
        assert state.lookup(path, st) is None
        state.record(path, st, "b" * 64)
        assert state.lookup(path, st) == "b" * 64


def test_adopting_across_filesystems_copies_and_verifies(tmp_path: Path) -> None:
    """A file on another filesystem (tmpfs) cannot be hardlinked: it is copied while hashed,
    becomes a read-only blob, and a file with other bytes is refused."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second filesystem at /dev/shm")
    data = os.urandom(3 * (1 << 20) + 5)
    digest = hashlib.sha256(data).hexdigest()
    source = shm / f"modelsync-test-{digest[:12]}"
    source.write_bytes(data)
    try:
        layout = StoreLayout(tmp_path / "store")
        with open_state(layout.state_path) as state:
            blobs = BlobStore(layout, state)
            assert blobs.adopt(source, "0" * 64, len(data)) is None
            adopted = blobs.adopt(source, digest, len(data))
            assert adopted is not None
            assert adopted.how == "copy"
            blob = layout.blob_path(digest)
            assert blob.read_bytes() == data
            assert blob.stat().st_mode & 0o777 == 0o444
            assert blobs.trusted(digest, blob.stat())
    finally:
        source.unlink()
