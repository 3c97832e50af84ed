"""`modelsync import` against hostile and damaged bundles: tar members that climb out, links,
devices and duplicates; an index whose sizes lie; a blob the lock does not name; a cut tar; a
flipped byte; symlinks and a FIFO in a bundle folder. Every good blob still enters the store,
every bad one is refused by name (exit 4), and nothing outside the bundle is read or written."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state
from tests.fixtures.cli import CliResult, CliRunner
from tests.fixtures.projects import TINY_WEIGHTS

CONFIG = b"{}"
WEIGHTS_SHA = hashlib.sha256(TINY_WEIGHTS).hexdigest()
CONFIG_SHA = hashlib.sha256(CONFIG).hexdigest()
SORTED = sorted([WEIGHTS_SHA, CONFIG_SHA])


@pytest.fixture
def bundle(run_cli: CliRunner, tiny_project: dict[str, str], tmp_path: Path) -> Path:
    """A good bundle folder of the `tiny` project (weights.bin and config.json), exported
    from the default store after a sync."""
    assert run_cli("sync", env=tiny_project).exit_code == 0
    folder = tmp_path / "bundle"
    exported = run_cli("export", "--bundle", str(folder), env=tiny_project)
    assert exported.exit_code == 0, exported.stderr
    return folder


@pytest.fixture
def store_b(tmp_path: Path) -> Path:
    """The empty store of the machine behind the air gap."""
    return tmp_path / "store-b"


def imported(run_cli: CliRunner, path: Path, store: Path) -> CliResult:
    return run_cli("--store", str(store), "--json", "import", str(path))


def blobs_in(store: Path) -> list[str]:
    return sorted(p.name for p in (store / "blobs" / "sha256").rglob("*") if p.is_file())


def leftovers(store: Path) -> list[str]:
    """Temporary files an import left in the store."""
    return sorted(p.name for p in (store / "tmp").glob("*")) if (store / "tmp").is_dir() else []


def refusals(result: CliResult) -> dict[str, str]:
    """Refused blob → reason, from the `bundle.refused` events."""
    return {
        e["blob"]: e["reason"] for e in result.json_lines() if e.get("event") == "bundle.refused"
    }


def error_of(result: CliResult) -> str:
    return str(result.json_lines()[-1]["message"])


Member = tuple[tarfile.TarInfo, bytes | None]


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


def good_members(folder: Path) -> list[Member]:
    """The bundle's own members, in export order."""
    names = ["bundle.json", "models.lock", *(f"blobs/sha256/{s}" for s in SORTED)]
    return [member(n, (folder / n).read_bytes()) for n in names]


def write_tar(path: Path, members: list[Member]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_members_that_climb_out_or_link_are_never_extracted(
    run_cli: CliRunner, bundle: Path, store_b: Path, tmp_path: Path
) -> None:
    """`../`, absolute, symlink, hardlink and device members are never written anywhere; a
    listed blob that is a symlink member is refused, the other blob is admitted."""
    outside = tmp_path / "escaped"
    members = good_members(bundle)
    weights = f"blobs/sha256/{WEIGHTS_SHA}"
    members = [m for m in members if m[0].name != weights] + [
        member(f"../{outside.name}", b"pwned"),
        member(str(outside), b"pwned"),
        member(weights, kind=tarfile.SYMTYPE, link="/etc/passwd"),
        member("blobs/sha256/" + "0" * 64, kind=tarfile.LNKTYPE, link="models.lock"),
        member("dev", kind=tarfile.CHRTYPE),
    ]
    result = imported(run_cli, write_tar(tmp_path / "evil.tar", members), store_b)
    assert result.exit_code == 4
    assert refusals(result) == {WEIGHTS_SHA: "is not a regular file in the tar (a link or device)"}
    ignored = {e["member"] for e in result.json_lines() if e.get("event") == "bundle.ignored"}
    assert ignored == {f"../{outside.name}", str(outside), "dev"}
    assert not outside.exists()
    assert not (tmp_path / "dev").exists()
    assert blobs_in(store_b) == [CONFIG_SHA]
    assert leftovers(store_b) == []


def test_a_blob_given_twice_is_refused(
    run_cli: CliRunner, bundle: Path, store_b: Path, tmp_path: Path
) -> None:
    """A tar holding a blob's name twice (the good bytes and others) is ambiguous: refused."""
    members = good_members(bundle)
    members.append(member(f"blobs/sha256/{WEIGHTS_SHA}", b"x" * len(TINY_WEIGHTS)))
    result = imported(run_cli, write_tar(tmp_path / "twice.tar", members), store_b)
    assert result.exit_code == 4
    assert refusals(result) == {WEIGHTS_SHA: "appears twice in the tar"}
    assert blobs_in(store_b) == [CONFIG_SHA]


HUGE = 1 << 50


def lying(folder: Path, sha256: str, size: int) -> tuple[bytes, bytes]:
    """models.lock and bundle.json claiming `size` bytes for blob `sha256`, consistent with
    each other (as an attacker who rewrites both would make them)."""
    lock = (folder / "models.lock").read_text()
    pattern = rf"size = \d+\nsha256 = \"{sha256}\""
    lock, count = re.subn(pattern, f'size = {size}\nsha256 = "{sha256}"', lock)
    assert count == 1
    index = json.loads((folder / "bundle.json").read_text())
    data = lock.encode()
    index["lock"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    for entry in index["blobs"]:
        if entry["sha256"] == sha256:
            entry["size"] = size
    return data, json.dumps(index).encode()


@pytest.mark.parametrize("claimed", [HUGE, len(TINY_WEIGHTS) - 1])
@pytest.mark.parametrize("form", ["tar", "folder"])
def test_sizes_that_lie_are_refused_before_reading(
    run_cli: CliRunner, bundle: Path, store_b: Path, tmp_path: Path, *, form: str, claimed: int
) -> None:
    """A lock and index that both claim another size than the bundle holds (a petabyte, or
    one byte less) get the blob refused from its header or stat, without reading it."""
    lock, index = lying(bundle, WEIGHTS_SHA, claimed)
    if form == "tar":
        members = good_members(bundle)
        members[0] = member("bundle.json", index)
        members[1] = member("models.lock", lock)
        path = write_tar(tmp_path / "lying.tar", members)
        holds = "the tar holds"
    else:
        (bundle / "models.lock").write_bytes(lock)
        (bundle / "bundle.json").write_bytes(index)
        path, holds = bundle, "the bundle holds"
    result = imported(run_cli, path, store_b)
    assert result.exit_code == 4
    assert refusals(result) == {
        WEIGHTS_SHA: f"{holds} {len(TINY_WEIGHTS)} bytes of it, bundle.json says {claimed}"
    }
    assert blobs_in(store_b) == [CONFIG_SHA]
    assert leftovers(store_b) == []


def test_index_size_against_its_own_lock_is_refused(
    run_cli: CliRunner, bundle: Path, store_b: Path
) -> None:
    """bundle.json claiming another size than its models.lock pins: that blob is refused."""
    index = json.loads((bundle / "bundle.json").read_text())
    for entry in index["blobs"]:
        if entry["sha256"] == WEIGHTS_SHA:
            entry["size"] = HUGE
    (bundle / "bundle.json").write_text(json.dumps(index))
    result = imported(run_cli, bundle, store_b)
    assert result.exit_code == 4
    assert refusals(result) == {
        WEIGHTS_SHA: f"bundle.json says {HUGE} bytes, its models.lock pins {len(TINY_WEIGHTS)}"
    }
    assert blobs_in(store_b) == [CONFIG_SHA]


def test_a_blob_the_lock_does_not_name_is_refused(
    run_cli: CliRunner, bundle: Path, store_b: Path
) -> None:
    """A blob listed in bundle.json and present with the right bytes, but pinned by no file
    of the bundled lock, is refused: a bundle carries its lock's blobs and nothing else."""
    extra = b"not in the lock"
    digest = hashlib.sha256(extra).hexdigest()
    (bundle / "blobs" / "sha256" / digest).write_bytes(extra)
    index = json.loads((bundle / "bundle.json").read_text())
    index["blobs"].append({"sha256": digest, "size": len(extra)})
    (bundle / "bundle.json").write_text(json.dumps(index))
    result = imported(run_cli, bundle, store_b)
    assert result.exit_code == 4
    assert refusals(result) == {digest: "listed in bundle.json but not in its models.lock"}
    assert blobs_in(store_b) == SORTED


def test_a_cut_tar_keeps_the_blobs_before_the_cut(
    run_cli: CliRunner, bundle: Path, store_b: Path, tmp_path: Path
) -> None:
    """A tar cut inside its last blob: the blobs before it enter the store, the cut one is
    refused (exit 4) and leaves no temporary file; cut inside the first blob, the first is
    cut short and the next missing."""
    whole = write_tar(tmp_path / "whole.tar", good_members(bundle)).read_bytes()
    with tarfile.open(tmp_path / "whole.tar") as tar:
        data_at = {m.name.rpartition("/")[2]: (m.offset_data, m.size) for m in tar.getmembers()}
    first, last = SORTED
    start, size = data_at[last]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[: start + size // 2])
    result = imported(run_cli, cut, store_b)
    assert result.exit_code == 4
    assert list(refusals(result)) == [last]
    assert refusals(result)[last].startswith("is cut short")
    assert blobs_in(store_b) == [first]
    assert leftovers(store_b) == []

    start, size = data_at[first]
    cut.write_bytes(whole[: start + size // 2])
    early = imported(run_cli, cut, tmp_path / "store-c")
    assert early.exit_code == 4
    assert refusals(early)[first].startswith("is cut short")
    assert refusals(early)[last] == "is missing from the bundle (the tar is cut short)"
    assert not (tmp_path / "store-c" / "blobs").exists() or blobs_in(tmp_path / "store-c") == []


@pytest.mark.parametrize("form", ["tar", "folder"])
def test_a_flipped_byte_is_refused_by_name(
    run_cli: CliRunner, bundle: Path, store_b: Path, tmp_path: Path, form: str
) -> None:
    """One byte changed in a blob: exit 4, the error names the file and the digest found,
    the other blob enters the store, the bad bytes do not."""
    blob = bundle / "blobs" / "sha256" / WEIGHTS_SHA
    data = bytearray(blob.read_bytes())
    data[1234] ^= 0xFF
    blob.unlink()  # a hardlink of store A's blob: replace it, never write through it
    blob.write_bytes(bytes(data))
    path = bundle if form == "folder" else write_tar(tmp_path / "b.tar", good_members(bundle))
    result = imported(run_cli, path, store_b)
    assert result.exit_code == 4
    found = hashlib.sha256(data).hexdigest()
    assert refusals(result) == {WEIGHTS_SHA: f"its bytes hash to {found}, not to its name"}
    assert error_of(result).startswith(
        f"{path}: 1 of 2 blobs refused: tiny/weights.bin (sha256 {WEIGHTS_SHA[:12]}): its "
        f"bytes hash to {found}, not to its name; 1 good blobs are in the store"
    )
    assert blobs_in(store_b) == [CONFIG_SHA]
    assert leftovers(store_b) == []


Plant = Callable[[Path, Path], None]


def _blob_symlink(bundle: Path, good: Path) -> None:
    target = bundle / "blobs" / "sha256" / WEIGHTS_SHA
    target.unlink()
    target.symlink_to(good)


def _folder_symlink(bundle: Path, good: Path) -> None:
    elsewhere = good.parent.parent / "elsewhere"
    (bundle / "blobs" / "sha256").rename(elsewhere)
    (bundle / "blobs" / "sha256").symlink_to(elsewhere)


def _fifo(bundle: Path, good: Path) -> None:
    assert good.is_file()
    target = bundle / "blobs" / "sha256" / WEIGHTS_SHA
    target.unlink()
    os.mkfifo(target)


@pytest.mark.parametrize(
    ("plant", "reason"),
    [
        (_blob_symlink, "is a symbolic link in the bundle (not followed)"),
        (_folder_symlink, "is a symbolic link in the bundle (not followed)"),
        (_fifo, "is not a regular file"),
    ],
)
def test_a_bundle_folder_is_read_without_following_links(
    run_cli: CliRunner, bundle: Path, store_b: Path, tmp_path: Path, *, plant: Plant, reason: str
) -> None:
    """A blob (or the blob folder) that is a symlink to a file outside the bundle, even one
    holding the right bytes, is refused; a FIFO is refused without blocking."""
    good = tmp_path / "outside" / WEIGHTS_SHA
    good.parent.mkdir()
    good.write_bytes(TINY_WEIGHTS)
    plant(bundle, good)
    result = imported(run_cli, bundle, store_b)
    assert result.exit_code == 4
    refused = refusals(result)
    assert refused[WEIGHTS_SHA] == reason
    assert WEIGHTS_SHA not in blobs_in(store_b)


@pytest.mark.parametrize("damage", ["lock", "index", "index-json"])
def test_a_lock_or_index_that_disagree_stop_everything(
    run_cli: CliRunner, bundle: Path, store_b: Path, damage: str
) -> None:
    """A models.lock whose digest is not the index's, or an index that is not one, is a
    damaged bundle: exit 4 naming it, nothing admitted."""
    if damage == "lock":
        lock = bundle / "models.lock"
        lock.write_text(lock.read_text().replace(WEIGHTS_SHA, CONFIG_SHA))
        expected = f"{bundle}: models.lock hashes to "
    elif damage == "index":
        (bundle / "bundle.json").write_text('{"format": "modelsync-bundle", "version": 1}')
        expected = f"{bundle}: bundle.json: damaged bundle index: lock: Field required"
    else:
        (bundle / "bundle.json").write_bytes(b"\x00" * 10)
        expected = f"{bundle}: bundle.json: damaged bundle index: not JSON"
    result = imported(run_cli, bundle, store_b)
    assert result.exit_code == 4
    assert error_of(result).startswith(expected)
    assert not (store_b / "blobs").exists()


class Counting(io.RawIOBase):
    """An endless source of one byte value that counts what was read from it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        buffer[:] = b"x" * len(buffer)
        self.read_bytes += len(buffer)
        return len(buffer)


def test_admission_reads_at_most_one_byte_past_the_claim(tmp_path: Path) -> None:
    """A source that holds more than its claimed size is read only to claim + 1 bytes, and
    nothing enters the store."""
    layout = StoreLayout(tmp_path / "store")
    source = Counting()
    claimed = hashlib.sha256(b"x" * 10).hexdigest()
    with open_state(layout.state_path) as state:
        actual, read = BlobStore(layout, state).admit_stream(source, claimed, 10)
    assert (read, source.read_bytes) == (11, 11)
    assert actual == hashlib.sha256(b"x" * 11).hexdigest()
    assert not layout.blob_path(claimed).exists()
    assert list(layout.tmp_dir.iterdir()) == []
