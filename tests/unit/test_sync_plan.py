"""The pure parts of sync: profile choice, target paths, the plan, verification, the record text."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from modelsync.errors import ExitCode, LockfileError, UsageError
from modelsync.hardware.model import GpuInfo, HardwareProfile
from modelsync.lockfile.model import LockedFile, LockedModel, LockedProfile, Lockfile
from modelsync.sync.desired import (
    choose_profile,
    misfits,
    select_models,
    target_of,
    wanted_files,
)
from modelsync.sync.model import (
    BlobSeen,
    Candidate,
    FileStat,
    Inventory,
    LinkMode,
    Placement,
    PlaceReason,
    Source,
    TargetSeen,
    Wanted,
)
from modelsync.sync.placed import render_record
from modelsync.sync.plan import plan_sync
from modelsync.sync.verify import verify_inventory

GIB = 1 << 30
ROOT = Path("/proj/models")
BLOBS = Path("/store/blobs/sha256")
SHA_A = hashlib.sha256(b"a").hexdigest()
SHA_B = hashlib.sha256(b"b").hexdigest()


def profile(
    name: str, ram: int, vram: int = 0, fingerprint: str = "sha256:" + "0" * 64
) -> LockedProfile:
    return LockedProfile(
        name=name,
        source="declared",
        fingerprint=fingerprint,
        ram=ram,
        vram=vram,
        gpus=int(vram > 0),
    )


def entry(name: str, profile_name: str | None, path: str, sha: str = SHA_A) -> LockedModel:
    return LockedModel(
        name=name,
        registry="hf",
        repo="org/repo",
        revision="main",
        commit="c" * 40,
        profile=profile_name,
        reason="test",
        inputs="sha256:" + "1" * 64,
        files=(LockedFile(path=path, size=1, sha256=sha),),
    )


def this_machine(ram: int, vram: int = 0) -> HardwareProfile:
    gpus = (GpuInfo("GPU", "nvidia", vram),) if vram else ()
    return HardwareProfile("detected", "detected", ram, gpus=gpus)


def two_profile_lock() -> Lockfile:
    return Lockfile(
        version=1,
        manifest_digest="sha256:" + "2" * 64,
        profiles=(profile("gpu", 8 * GIB, 24 * GIB), profile("laptop", 16 * GIB)),
        models=(entry("m", "gpu", "m-Q8_0.gguf"), entry("m", "laptop", "m-Q4_K_M.gguf")),
    )


def test_detected_profile_of_an_old_lock_is_ignored() -> None:
    """A `detected` [[profile]] written by an older version is no profile to choose."""
    old = replace(profile("detected", 64 * GIB), source="detected")
    lock = two_profile_lock()
    lock = replace(lock, profiles=(*lock.profiles, old))
    choice = choose_profile(lock, None, this_machine(64 * GIB))
    assert (choice.name, choice.why) == (
        "laptop",
        "the largest that fits this machine (64 GiB RAM)",
    )
    alone = replace(lock, profiles=(old,), models=(entry("m", None, "m.gguf"),))
    assert choose_profile(alone, None, None).name is None
    with pytest.raises(UsageError):
        choose_profile(alone, "detected", None)


def test_misfits_compare_the_locked_estimate_with_gpu_and_ram_budgets() -> None:
    """A locked estimate above this machine's GPU + RAM budgets is named with the need, the
    machine and the fix; entries without an estimate and those that fit are not."""
    big = replace(entry("big", None, "big.gguf"), memory=20 * GIB, quant="Q8_0")
    small = replace(entry("small", None, "s.gguf"), memory=2 * GIB)
    plain = entry("plain", None, "p.bin")
    lock = Lockfile(version=1, manifest_digest="sha256:" + "2" * 64, models=(big, small, plain))
    laptop = this_machine(16 * GIB)
    [found] = misfits(lock, lock.models, laptop)
    assert found.line() == (
        "models.big: the locked Q8_0 needs est. 20.0 GiB; this machine has 13.0 GiB usable "
        "(16.0 GiB RAM); declare the machines you sync to as [profiles] in models.toml and run "
        "`modelsync lock` (or `modelsync lock --profile NAME`)"
    )
    workstation = this_machine(16 * GIB, 24 * GIB)
    assert misfits(lock, lock.models, workstation) == ()
    mac = HardwareProfile(
        "mac",
        "declared",
        16 * GIB,
        gpus=(GpuInfo("M2", "apple", 12 * GIB, backend="metal"),),
        unified=True,
    )
    assert [m.model for m in misfits(two_profile_lock(), (big,), mac)] == ["big"]


def test_largest_profile_that_fits_is_chosen() -> None:
    """The biggest profile the machine covers is chosen."""
    choice = choose_profile(two_profile_lock(), None, this_machine(32 * GIB, 24 * GIB))
    assert choice.name == "gpu"
    assert choice.why == "the largest that fits this machine (32 GiB RAM, 24 GiB VRAM)"
    cpu_only = choose_profile(two_profile_lock(), None, this_machine(32 * GIB))
    assert cpu_only.name == "laptop"


def test_smallest_profile_when_none_fits() -> None:
    """A machine smaller than every profile gets the smallest one, and is told none fits."""
    choice = choose_profile(two_profile_lock(), None, this_machine(4 * GIB))
    assert choice.name == "laptop"
    assert choice.why.startswith("none fits this machine (4 GiB RAM)")


def test_unknown_profile_is_a_usage_error_listing_the_lock_profiles() -> None:
    """`--profile` must name a profile of the lock; the error lists them."""
    with pytest.raises(UsageError) as caught:
        choose_profile(two_profile_lock(), "tpu", None)
    assert caught.value.one_line() == (
        "--profile tpu: models.lock has no such profile; profiles in the lock: gpu, laptop; "
        "or run `modelsync lock --profile tpu`"
    )


def test_select_models_takes_the_profile_entry_and_rejects_unknown_names() -> None:
    """Each model contributes the entry of the chosen profile; an unknown --model exits 2."""
    lock = two_profile_lock()
    [chosen] = select_models(lock, "gpu", ())
    assert chosen.files[0].path == "m-Q8_0.gguf"
    with pytest.raises(UsageError, match=re.escape("--model nope: not in models.lock")):
        select_models(lock, "gpu", ("nope",))


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../x", "", "-x", "a\\b"])
def test_unsafe_model_names_are_refused(name: str) -> None:
    """A model name from the lock is one folder: traversal and separators are refused (exit 2)."""
    with pytest.raises(LockfileError) as caught:
        target_of(ROOT, name, "f.gguf")
    assert caught.value.exit_code == ExitCode.USAGE
    assert "refusing to write anything" in caught.value.message


def test_target_paths_stay_inside_the_target_dir() -> None:
    """A safe name and path land at `<target>/<model>/<path>`."""
    assert target_of(ROOT, "m", "sub/f.gguf") == ROOT / "m" / "sub" / "f.gguf"


def test_download_urls_follow_the_hub_layout() -> None:
    """Hub files resolve under the endpoint at the locked commit, the path quoted."""
    hub = Source("hf", "http://127.0.0.1:9")
    [item] = wanted_files([entry("m", None, "dir/a b.gguf")], ROOT, {"hf": hub})
    assert item.url == f"http://127.0.0.1:9/org/repo/resolve/{'c' * 40}/dir/a%20b.gguf"
    assert item.rel == "m/dir/a b.gguf"


def test_a_registry_missing_from_the_manifest_is_named() -> None:
    """A lock entry whose registry the manifest lacks stops with the registry's name."""
    with pytest.raises(
        UsageError, match=re.escape("registry 'hf', which models.toml does not declare")
    ):
        wanted_files([entry("m", None, "f")], ROOT, {"corp": Source("corp", "https://c")})


# ---- the plan -------------------------------------------------------------------------------


def wanted(path: str = "f.gguf", sha: str = SHA_A, size: int = 10) -> Wanted:
    return Wanted("m", path, size, sha, ROOT / "m" / path, f"http://x/{path}", "hf")


def fstat(inode: int, size: int = 10, kind: str = "file", link: str | None = None) -> FileStat:
    return FileStat(size=size, inode=inode, device=1, mtime_ns=5, kind=kind, link=link)


def blob(sha: str = SHA_A, inode: int | None = 100, trusted: bool = True) -> BlobSeen:
    seen = None if inode is None else fstat(inode)
    return BlobSeen(sha, BLOBS / sha[:2] / sha, seen, trusted=trusted)


def inventory(
    target: TargetSeen, blob_seen: BlobSeen, stale: tuple[TargetSeen, ...] = ()
) -> Inventory:
    return Inventory(ROOT, {blob_seen.sha256: blob_seen}, {target.rel: target}, stale)


def placed(sha: str = SHA_A, inode: int = 100, mode: LinkMode = LinkMode.HARDLINK) -> Placement:
    return Placement(sha, 10, mode, inode, 5)


def test_nothing_to_do_is_a_falsy_plan() -> None:
    """An untouched hardlink of a trusted blob: the plan is empty and counts it unchanged."""
    item = wanted()
    plan = plan_sync(
        [item], inventory(TargetSeen(item.rel, item.target, fstat(100), placed()), blob())
    )
    assert not plan
    assert plan.unchanged == 1
    assert plan.bytes_to_fetch == 0


def test_missing_blob_and_target_are_fetched_and_placed() -> None:
    """A blob the store lacks is fetched (its bytes counted) and the target placed."""
    item = wanted()
    plan = plan_sync(
        [item], inventory(TargetSeen(item.rel, item.target, None, None), blob(inode=None))
    )
    assert [s.sha256 for s in plan.fetch] == [SHA_A]
    assert plan.bytes_to_fetch == 10
    assert [(p.rel, p.reason) for p in plan.place] == [("m/f.gguf", PlaceReason.MISSING)]
    assert not plan.bad_blobs


def test_blob_of_the_wrong_size_is_bad_and_fetched_again() -> None:
    """A stored blob whose bytes do not hash to its name (here: 3 bytes, not 10) is reported
    bad (apply moves it to quarantine) and fetched again."""
    item = wanted()
    seen_blob = BlobSeen(SHA_A, BLOBS / "x", fstat(100, size=3), trusted=False)
    plan = plan_sync(
        [item], inventory(TargetSeen(item.rel, item.target, fstat(100, 3), placed()), seen_blob)
    )
    assert [b.found for b in plan.bad_blobs] == ["3 bytes instead of 10"]
    assert [s.sha256 for s in plan.fetch] == [SHA_A]


def test_local_copies_are_adopted_and_partials_resumed_not_counted_as_fetched() -> None:
    """A blob with a local copy is planned as an adoption and one with a partial download as
    a resumed fetch: bytes to fetch are only the bytes neither holds."""
    one, two = wanted("a.gguf", SHA_A, 10), wanted("b.gguf", SHA_B, 30)
    cached = Candidate(Path("/hf/blobs") / SHA_A, "huggingface")
    blobs = {
        SHA_A: BlobSeen(SHA_A, BLOBS / "a", None, local=(cached,), partial=4),
        SHA_B: BlobSeen(SHA_B, BLOBS / "b", None, partial=12),
    }
    targets = {w.rel: TargetSeen(w.rel, w.target, None, None) for w in (one, two)}
    plan = plan_sync([one, two], Inventory(ROOT, blobs, targets))
    assert [(s.sha256, s.adopt, s.resume_from) for s in plan.fetch] == [
        (SHA_A, (cached,), 0),
        (SHA_B, (), 12),
    ]
    assert [s.sha256 for s in plan.adoptions] == [SHA_A]
    assert [s.sha256 for s in plan.downloads] == [SHA_B]
    assert (plan.bytes_to_fetch, plan.bytes_resumed, plan.bytes_to_adopt) == (18, 12, 10)


def test_outdated_placement_is_replaced() -> None:
    """A file sync placed for an older lock (other digest), untouched, is re-placed."""
    item = wanted(sha=SHA_B)
    seen = TargetSeen(item.rel, item.target, fstat(100), placed(SHA_A))
    plan = plan_sync([item], inventory(seen, blob(SHA_B, inode=200)))
    assert [p.reason for p in plan.place] == [PlaceReason.OUTDATED]
    assert not plan.conflicts


def test_forced_link_mode_replaces_other_placements() -> None:
    """`--link copy` re-places a file that was hardlinked."""
    item = wanted()
    seen = TargetSeen(item.rel, item.target, fstat(100), placed())
    plan = plan_sync([item], inventory(seen, blob()), link=LinkMode.COPY)
    assert [p.reason for p in plan.place] == [PlaceReason.LINK_MODE]
    assert plan.link is LinkMode.COPY


def test_foreign_file_is_a_conflict_unless_repair() -> None:
    """A file sync never placed, with other bytes, is a conflict; `--repair` replaces it."""
    item = wanted()
    seen = TargetSeen(item.rel, item.target, fstat(7, size=4), None)
    plan = plan_sync([item], inventory(seen, blob()))
    [conflict] = plan.conflicts
    assert (conflict.modified, conflict.found) == (False, "4 bytes")
    assert not plan.place
    repaired = plan_sync([item], inventory(seen, blob()), repair=True)
    assert [p.reason for p in repaired.place] == [PlaceReason.REPAIR]
    assert not repaired.conflicts


def test_modified_placement_is_a_conflict_naming_what_was_found() -> None:
    """A placed copy changed by the user (new mtime, other digest) is not silently overwritten."""
    item = wanted()
    edited = FileStat(size=10, inode=7, device=1, mtime_ns=6, kind="file")
    seen = TargetSeen(item.rel, item.target, edited, placed(inode=7, mode=LinkMode.COPY), SHA_B)
    [conflict] = plan_sync([item], inventory(seen, blob())).conflicts
    assert conflict.modified
    assert conflict.found == f"10 bytes, sha256 {SHA_B}"


def test_bytes_changed_under_an_unchanged_stat_count_once_hashed() -> None:
    """A copy whose stat matches the record but whose hash (from --repair) does not is no longer
    untouched: a conflict, replaced under --repair."""
    item = wanted()
    seen = TargetSeen(item.rel, item.target, fstat(7), placed(inode=7, mode=LinkMode.COPY), SHA_B)
    assert not seen.untouched
    assert plan_sync([item], inventory(seen, blob())).conflicts
    repaired = plan_sync([item], inventory(seen, blob()), repair=True)
    assert [p.reason for p in repaired.place] == [PlaceReason.REPAIR]


def test_users_identical_copy_is_kept_and_never_recorded() -> None:
    """A file the user put there with exactly the wanted bytes is fine and stays theirs."""
    item = wanted()
    seen = TargetSeen(item.rel, item.target, fstat(7), None, content_sha256=SHA_A)
    plan = plan_sync([item], inventory(seen, blob()))
    assert not plan
    assert plan.unchanged == 1


def test_unrecorded_link_to_the_blob_is_taken_into_the_record() -> None:
    """A hardlink of the blob that the record lacks (a crash before the record was written) is
    recorded, not re-placed."""
    item = wanted()
    seen = TargetSeen(item.rel, item.target, fstat(100), None)
    plan = plan_sync([item], inventory(seen, blob()))
    [step] = plan.record
    assert step.placement is not None
    assert step.placement.mode is LinkMode.HARDLINK
    assert not plan.place


def test_dangling_symlink_is_relinked_after_the_blob_returns() -> None:
    """An untouched symlink whose blob is gone is placed again once the blob is fetched."""
    item = wanted()
    seen_blob = blob(inode=None)
    link = str(seen_blob.path)
    seen = TargetSeen(
        item.rel,
        item.target,
        fstat(9, kind="symlink", link=link),
        placed(inode=9, mode=LinkMode.SYMLINK),
    )
    plan = plan_sync([item], inventory(seen, seen_blob))
    assert [p.reason for p in plan.place] == [PlaceReason.RELINK]
    assert [s.sha256 for s in plan.fetch] == [SHA_A]


def test_stale_placements_are_removed_only_when_untouched() -> None:
    """Recorded files no longer wanted: untouched ones are removed, changed ones forgotten,
    vanished ones dropped from the record."""
    item = wanted()
    current = TargetSeen(item.rel, item.target, fstat(100), placed())
    old = TargetSeen("m/old.gguf", ROOT / "m/old.gguf", fstat(100), placed())
    changed = TargetSeen("m/mine.gguf", ROOT / "m/mine.gguf", fstat(55), placed())
    gone = TargetSeen("m/gone.gguf", ROOT / "m/gone.gguf", None, placed())
    plan = plan_sync([item], inventory(current, blob(), (old, changed, gone)))
    assert [r.rel for r in plan.remove] == ["m/old.gguf"]
    assert {(r.rel, r.placement) for r in plan.record} == {
        ("m/mine.gguf", None),
        ("m/gone.gguf", None),
    }


def test_unregistered_lock_makes_the_plan_non_empty() -> None:
    """A lock the store does not list yet must be registered (under the store lock)."""
    item = wanted()
    inv = inventory(TargetSeen(item.rel, item.target, fstat(100), placed()), blob())
    plan = plan_sync([item], Inventory(ROOT, inv.blobs, inv.targets, root_registered=False))
    assert plan
    assert plan.register_root


# ---- verify ----------------------------------------------------------------------------------


def test_verify_names_expected_and_found_for_each_bad_file() -> None:
    """A bad blob and a missing target are both reported with expected size and digest."""
    item = wanted()
    bad = BlobSeen(SHA_A, BLOBS / "ab" / SHA_A, fstat(100), actual_sha256=SHA_B, trusted=False)
    report = verify_inventory(
        [item], inventory(TargetSeen(item.rel, item.target, None, None), bad), full=True
    )
    assert [(m.path, m.found) for m in report.mismatches] == [
        (BLOBS / "ab" / SHA_A, f"10 bytes, sha256 {SHA_B}"),
        (item.target, "missing (run `modelsync sync`)"),
    ]
    assert all(m.expected == f"10 bytes, sha256 {SHA_A}" for m in report.mismatches)
    assert not report.ok


def test_verify_passes_an_untouched_copy_by_stat_alone() -> None:
    """By default an untouched recorded copy is trusted from its stat; no hash is needed."""
    item = wanted()
    seen = TargetSeen(item.rel, item.target, fstat(7), placed(inode=7, mode=LinkMode.COPY))
    assert verify_inventory([item], inventory(seen, blob()), full=False).ok


# ---- the record ------------------------------------------------------------------------------


def test_record_text_is_sorted_json_with_a_version() -> None:
    """The placement record renders deterministically whatever the insertion order."""
    a = {"b/x": placed(), "a/y": placed(SHA_B, 5, LinkMode.COPY)}
    b = {"a/y": placed(SHA_B, 5, LinkMode.COPY), "b/x": placed()}
    text = render_record(Path("/p/models.lock"), a, LinkMode.HARDLINK)
    assert text == render_record(Path("/p/models.lock"), b, LinkMode.HARDLINK)
    data = json.loads(text)
    assert (data["version"], data["lock"]) == (1, "/p/models.lock")
    assert list(data["files"]) == ["a/y", "b/x"]
    assert data["files"]["a/y"]["mode"] == "copy"
