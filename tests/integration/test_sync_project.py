"""`sync` end to end against the project's Hub server on 127.0.0.1, on real files: the store,
dedup, the no-change path (zero requests, zero content reads), stale removals, profiles, link
modes, repair and verification."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from modelsync.errors import ExitCode, IntegrityError, RemoteError, StaleError
from modelsync.hardware.model import HardwareProfile, declared
from modelsync.lockfile.model import LockedFile, LockedModel, LockedProfile, Lockfile
from modelsync.lockfile.render import render_lock
from modelsync.manifest.load import load_manifest
from modelsync.net.retry import RetryPolicy
from modelsync.ops.sync import SyncReport, SyncRequest, sync_project
from modelsync.ops.verify import VerifyRequest, verify_project
from modelsync.server.runner import ServerHandle
from modelsync.store import roots
from modelsync.store.layout import StoreLayout
from modelsync.store.state import current_boot_id
from modelsync.sync.model import LinkMode
from modelsync.sync.placed import record_path
from tests.fixtures.hub import HubRepoFactory, HubTokens

FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)


def data(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)  # noqa: S311 - reproducible test data


def sha(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def write_manifest(folder: Path, models: dict[str, str], head: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    body = "".join(
        f'[models.{name}]\nsource = "hf://{repo}"\ninclude = ["*"]\n'
        for name, repo in models.items()
    )
    manifest = folder / "models.toml"
    manifest.write_text(head + body)
    return manifest


@pytest.fixture
def env(hub: ServerHandle, tmp_path: Path) -> dict[str, str]:
    """The hub as the default registry; empty Hugging Face and Ollama caches (no adoption)."""
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf-cache"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """An empty store."""
    return tmp_path / "store"


def sync(manifest: Path, store: Path, env: dict[str, str], **options: object) -> SyncReport:
    request = SyncRequest(manifest=manifest, store=store, environ=env, retry=FAST, **options)  # type: ignore[arg-type]
    return asyncio.run(sync_project(request))


def blob_files(store: Path) -> list[Path]:
    return sorted(p for p in (store / "blobs" / "sha256").rglob("*") if p.is_file())


WEIGHTS = data(1, 300_000)
SHARED = data(2, 200_000)
CONFIG = '{"arch": "tiny"}\n'


@pytest.fixture
def repos(hub_repo: HubRepoFactory) -> None:
    """org/a and org/b share one file (same bytes); each has its own weights."""
    hub_repo("org/a", {"weights.bin": WEIGHTS, "shared.bin": SHARED, "config.json": CONFIG})
    hub_repo("org/b", {"other.bin": data(3, 100_000), "shared.bin": SHARED})


@pytest.mark.usefixtures("repos")
def test_first_sync_places_hardlinks_and_a_second_makes_no_request(
    hub: ServerHandle, tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """The first sync locks, fetches into the store and hardlinks every file; the next one
    finds nothing to do and sends zero HTTP requests."""
    manifest = write_manifest(tmp_path / "p", {"a": "org/a"})
    first = sync(manifest, store, env)
    assert first.relocked
    assert first.applied is not None
    assert (first.applied.fetched, first.applied.placed) == (3, 3)
    assert first.link_mode == "hardlink"  # this machine: one ext4, no reflinks
    weights = tmp_path / "p" / "models" / "a" / "weights.bin"
    assert weights.read_bytes() == WEIGHTS
    blob = StoreLayout(store).blob_path(sha(WEIGHTS))
    assert weights.stat().st_ino == blob.stat().st_ino
    assert blob.stat().st_mode & 0o777 == 0o444
    assert roots.is_registered(
        StoreLayout(store), manifest.with_name("models.lock"), weights.parents[1]
    )
    before = hub.repos.counters.requests()
    second = sync(manifest, store, env)
    assert hub.repos.counters.requests() == before
    assert second.applied is None
    assert not second.plan
    assert second.plan.unchanged == 3


@pytest.mark.usefixtures("repos")
def test_no_change_sync_reads_no_content(tmp_path: Path, store: Path, env: dict[str, str]) -> None:
    """Bytes changed in place under a stat the cache vouches for go unseen by sync and by the
    default verify (proof that they read no content); `verify --full` names the file and
    `sync --repair`, which hashes everything, fetches it again. (No user can set a ctime back,
    so the cache row is moved to the new ctime by hand: tests/adversarial covers the real case.)"""
    manifest = write_manifest(tmp_path / "p", {"a": "org/a"})
    sync(manifest, store, env)
    blob = StoreLayout(store).blob_path(sha(WEIGHTS))
    st = blob.stat()
    blob.chmod(0o644)
    with blob.open("r+b") as handle:
        handle.write(b"X" * 16)
    blob.chmod(0o444)
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    with sqlite3.connect(StoreLayout(store).state_path) as db:
        db.execute(
            "UPDATE verified SET ctime_ns = ? WHERE path = ?", (blob.stat().st_ctime_ns, str(blob))
        )
    db.close()
    assert not sync(manifest, store, env).plan
    verify_project(VerifyRequest(manifest=manifest, store=store, environ=env))
    with pytest.raises(IntegrityError) as caught:
        verify_project(VerifyRequest(manifest=manifest, store=store, environ=env, full=True))
    assert caught.value.exit_code == ExitCode.INTEGRITY
    assert f"{blob}: expected 300000 bytes, sha256 {sha(WEIGHTS)}, found 300000 bytes, sha256 " in (
        caught.value.message
    )
    repaired = sync(manifest, store, env, repair=True)
    assert [b.sha256 for b in repaired.plan.bad_blobs] == [sha(WEIGHTS)]
    assert (tmp_path / "p" / "models" / "a" / "weights.bin").read_bytes() == WEIGHTS
    verify_project(VerifyRequest(manifest=manifest, store=store, environ=env, full=True))


def _boots(store: Path) -> dict[str, str | None]:
    with sqlite3.connect(StoreLayout(store).state_path) as db:
        return {Path(p).name: b for p, b in db.execute("SELECT path, boot FROM verified")}


@pytest.mark.usefixtures("repos")
def test_downloads_skip_fsync_and_are_reverified_after_a_reboot(
    tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """A fresh blob is recorded as pending for this boot (no fsync wait); the next look settles
    it; after a reboot a still-pending blob is hashed again, so bytes lost in a crash are
    caught by the default verify."""
    manifest = write_manifest(tmp_path / "p", {"a": "org/a"})
    sync(manifest, store, env)
    weights = sha(WEIGHTS)
    this_boot = current_boot_id()
    assert this_boot is not None
    assert _boots(store)[weights] == this_boot  # pending: only in the page cache for sure
    verify_project(VerifyRequest(manifest=manifest, store=store, environ=env))
    assert _boots(store)[weights] is None  # fsynced on that look, now known to be on disk
    # Pretend the record was made in an earlier boot that ended before writeback, which left
    # other bytes on disk under an unchanged stat.
    with sqlite3.connect(StoreLayout(store).state_path) as db:
        db.execute("UPDATE verified SET boot = 'an-earlier-boot'")
    blob = StoreLayout(store).blob_path(weights)
    st = blob.stat()
    blob.chmod(0o644)
    with blob.open("r+b") as handle:
        handle.write(b"\0" * 4096)
    os.utime(blob, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(IntegrityError) as caught:
        verify_project(VerifyRequest(manifest=manifest, store=store, environ=env))
    assert f"{blob}: expected 300000 bytes, sha256 {weights}" in caught.value.message


@pytest.mark.usefixtures("repos")
def test_shared_bytes_are_stored_and_downloaded_once(
    hub: ServerHandle, tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """Two models and two projects sharing a file: one blob, one download, every target a link
    to it; the store's size on disk equals the unique bytes."""
    one = write_manifest(tmp_path / "one", {"a": "org/a", "b": "org/b"})
    two = write_manifest(tmp_path / "two", {"b": "org/b"})
    sync(one, store, env)
    report = sync(two, store, env)
    assert report.applied is not None
    assert report.applied.fetched == 0  # everything project two needs is already stored
    shared_sent = hub.repos.counters.bytes_sent(
        "org/a", "shared.bin"
    ) + hub.repos.counters.bytes_sent("org/b", "shared.bin")
    assert shared_sent == len(SHARED)
    unique = {sha(WEIGHTS), sha(SHARED), sha(CONFIG.encode()), sha(data(3, 100_000))}
    assert {p.name for p in blob_files(store)} == unique
    used = sum(p.stat().st_size for p in blob_files(store))
    assert used == len(WEIGHTS) + len(SHARED) + len(CONFIG) + 100_000
    blob = StoreLayout(store).blob_path(sha(SHARED))
    assert blob.stat().st_nlink == 4  # the blob and three placements
    assert len(roots.registered(StoreLayout(store))) == 2


@pytest.mark.usefixtures("repos")
def test_stale_placements_go_and_user_files_stay(
    tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """Dropping a model removes the files sync placed for it, never the user's own files, nor a
    placed file the user has since replaced."""
    folder = tmp_path / "p"
    manifest = write_manifest(folder, {"a": "org/a", "b": "org/b"})
    sync(manifest, store, env)
    models = folder / "models"
    (models / "b" / "notes.txt").write_text("mine")
    (models / "mine.gguf").write_bytes(b"user weights")
    replaced = models / "b" / "other.bin"
    replaced.unlink()
    replaced.write_bytes(b"my own version")
    write_manifest(folder, {"a": "org/a"})
    report = sync(manifest, store, env)
    assert report.relocked
    assert report.applied is not None
    assert report.applied.removed == ("b/shared.bin",)
    assert not (models / "b" / "shared.bin").exists()
    assert (models / "b" / "notes.txt").read_text() == "mine"
    assert replaced.read_bytes() == b"my own version"
    assert (models / "mine.gguf").read_bytes() == b"user weights"
    assert (models / "a" / "shared.bin").read_bytes() == SHARED
    assert "b/other.bin" not in record_path(models, manifest.with_name("models.lock")).read_text()
    (models / "b" / "notes.txt").unlink()
    replaced.unlink()
    assert not sync(manifest, store, env).plan
    assert (models / "b").exists()  # an empty folder the user emptied is theirs to remove


@pytest.mark.usefixtures("repos")
def test_model_filter_leaves_other_models_alone(
    tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """`--model a` places only a's files; b's placements stay as they were."""
    manifest = write_manifest(tmp_path / "p", {"a": "org/a", "b": "org/b"})
    only_a = sync(manifest, store, env, models=("a",))
    assert only_a.models == ("a",)
    models = tmp_path / "p" / "models"
    assert (models / "a" / "weights.bin").exists()
    assert not (models / "b").exists()
    sync(manifest, store, env)
    again = sync(manifest, store, env, models=("a",))
    assert not again.plan
    assert (models / "b" / "other.bin").exists()


@pytest.mark.usefixtures("repos")
@pytest.mark.parametrize("mode", [LinkMode.SYMLINK, LinkMode.COPY])
def test_forced_link_modes(
    tmp_path: Path, store: Path, env: dict[str, str], mode: LinkMode
) -> None:
    """`--link symlink|copy` places by that mode, switches existing placements, and verifies."""
    manifest = write_manifest(tmp_path / "p", {"a": "org/a"})
    sync(manifest, store, env)
    report = sync(manifest, store, env, link=mode)
    assert report.link_mode == mode.value
    assert report.applied is not None
    assert report.applied.placed == 3
    target = tmp_path / "p" / "models" / "a" / "weights.bin"
    assert target.is_symlink() is (mode is LinkMode.SYMLINK)
    assert target.read_bytes() == WEIGHTS
    assert not sync(manifest, store, env, link=mode).plan
    verify_project(VerifyRequest(manifest=manifest, store=store, environ=env, full=True))


@pytest.mark.usefixtures("repos")
def test_modified_copy_is_reported_and_replaced_only_with_repair(
    tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """A placed copy the user edited: verify exits 4 naming it, sync exits 3 without touching
    it, `sync --repair` puts the locked bytes back."""
    manifest = write_manifest(tmp_path / "p", {"a": "org/a"})
    sync(manifest, store, env, link=LinkMode.COPY)
    target = tmp_path / "p" / "models" / "a" / "weights.bin"
    target.chmod(0o644)
    target.write_bytes(b"edited" + WEIGHTS[6:])
    with pytest.raises(IntegrityError) as bad:
        verify_project(VerifyRequest(manifest=manifest, store=store, environ=env))
    assert f"{target}: expected 300000 bytes, sha256 {sha(WEIGHTS)}, found 300000 bytes" in (
        bad.value.message
    )
    with pytest.raises(StaleError) as conflict:
        sync(manifest, store, env, link=LinkMode.COPY)
    assert conflict.value.one_line().startswith(
        f"1 target files hold other bytes than models.lock and were not overwritten: {target} "
        f"(changed since modelsync placed it: expected 300000 bytes, sha256 {sha(WEIGHTS)}; "
        "found 300000 bytes, sha256 "
    )
    assert conflict.value.one_line().endswith(
        "; move your files away, or run `modelsync sync --repair` to replace them"
    )
    assert target.read_bytes().startswith(b"edited")
    repaired = sync(manifest, store, env, link=LinkMode.COPY, repair=True)
    assert repaired.applied is not None
    assert repaired.applied.placed == 1
    assert target.read_bytes() == WEIGHTS
    verify_project(VerifyRequest(manifest=manifest, store=store, environ=env, full=True))


@pytest.mark.usefixtures("repos")
def test_corrupt_blob_is_fetched_again(
    hub: ServerHandle, tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """A blob whose bytes no longer match its name (its stat changed) is moved to quarantine,
    fetched again and re-linked; the targets end up with the locked bytes."""
    manifest = write_manifest(tmp_path / "p", {"a": "org/a"})
    sync(manifest, store, env, link=LinkMode.SYMLINK)
    blob = StoreLayout(store).blob_path(sha(WEIGHTS))
    blob.chmod(0o644)
    blob.write_bytes(b"garbage" * 10)
    sent = hub.repos.counters.bytes_sent("org/a", "weights.bin")
    report = sync(manifest, store, env, link=LinkMode.SYMLINK)
    assert [b.found for b in report.plan.bad_blobs] == ["70 bytes instead of 300000"]
    assert hub.repos.counters.bytes_sent("org/a", "weights.bin") == sent + len(WEIGHTS)
    assert (tmp_path / "p" / "models" / "a" / "weights.bin").read_bytes() == WEIGHTS


def profile_lock(manifest: Path, commit: str, big: bytes, small: bytes) -> None:
    """A lock with two profiles that chose different files for model m."""
    digest = load_manifest(manifest).digest()

    def entry(profile: str, path: str, content: bytes) -> LockedModel:
        return LockedModel(
            name="m",
            registry="hf",
            repo="org/m",
            revision="main",
            commit=commit,
            profile=profile,
            reason=f"{path} fits {profile}",
            inputs="sha256:" + "1" * 64,
            files=(LockedFile(path=path, size=len(content), sha256=sha(content)),),
        )

    def prof(name: str, ram: int, vram: int) -> LockedProfile:
        return LockedProfile(
            name=name,
            source="declared",
            fingerprint="sha256:" + "0" * 64,
            ram=ram,
            vram=vram,
            gpus=int(vram > 0),
        )

    lock = Lockfile(
        version=1,
        manifest_digest=digest,
        profiles=(prof("gpu", 8 << 30, 24 << 30), prof("laptop", 16 << 30, 0)),
        models=(entry("gpu", "m-Q8_0.gguf", big), entry("laptop", "m-Q4_K_M.gguf", small)),
    )
    manifest.with_name("models.lock").write_text(render_lock(lock))


def test_profile_best_fitting_the_machine_is_synced_and_switching_removes_the_other(
    hub_repo: HubRepoFactory, tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """Without --profile the lock's profile that fits the detected machine is synced (and the
    report says why); syncing the other profile replaces its files."""
    big, small = data(5, 50_000), data(6, 20_000)
    commit = hub_repo("org/m", {"m-Q8_0.gguf": big, "m-Q4_K_M.gguf": small}).commit
    manifest = write_manifest(
        tmp_path / "p",
        {"m": "org/m"},
        head='[profiles.gpu]\nram = "8GiB"\nvram = "24GiB"\n[profiles.laptop]\nram = "16GiB"\n',
    )
    profile_lock(manifest, commit, big, small)

    def machine() -> HardwareProfile:
        return declared("this", ram=32 << 30, vram=None)

    report = sync(manifest, store, env, frozen=True, detector=machine)
    assert (report.profile.name, report.profile.why) == (
        "laptop",
        "the largest that fits this machine (32 GiB RAM)",
    )
    models = tmp_path / "p" / "models" / "m"
    assert sorted(p.name for p in models.iterdir()) == ["m-Q4_K_M.gguf"]
    switched = sync(manifest, store, env, frozen=True, profile="gpu")
    assert switched.profile.why == "asked for with --profile"
    assert switched.applied is not None
    assert switched.applied.removed == ("m/m-Q4_K_M.gguf",)
    assert sorted(p.name for p in models.iterdir()) == ["m-Q8_0.gguf"]


def test_private_repo_downloads_with_the_registry_token(
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    hub_tokens: HubTokens,
    tmp_path: Path,
    env: dict[str, str],
) -> None:
    """A declared registry's token (from MODELSYNC_REGISTRY_CORP_TOKEN) authorizes the downloads;
    the same frozen lock without the token stops with exit 5 and nothing placed."""
    hub_repo("org/secret", {"weights.bin": WEIGHTS}, private=True)
    manifest = write_manifest(
        tmp_path / "p",
        {},
        head=f'[registries.corp]\ntype = "huggingface"\nendpoint = "{hub.endpoint}"\n'
        '[models.s]\nsource = "corp://org/secret"\ninclude = ["*"]\n',
    )
    with_token = {**env, "MODELSYNC_REGISTRY_CORP_TOKEN": hub_tokens.writer}
    report = sync(manifest, tmp_path / "store", with_token)
    assert report.applied is not None
    assert report.applied.fetched == 1
    assert (tmp_path / "p" / "models" / "s" / "weights.bin").read_bytes() == WEIGHTS
    elsewhere = tmp_path / "q"
    shutil.copytree(tmp_path / "p", elsewhere, ignore=shutil.ignore_patterns("models"))
    with pytest.raises(RemoteError) as refused:
        sync(elsewhere / "models.toml", tmp_path / "other-store", env, frozen=True)
    assert refused.value.exit_code == ExitCode.REMOTE
    assert refused.value.message.startswith("s/weights.bin: HTTP ")
    assert not (elsewhere / "models" / "s").exists()


@pytest.mark.usefixtures("repos")
def test_projects_sharing_a_target_dir_never_remove_each_others_files(
    tmp_path: Path, store: Path, env: dict[str, str]
) -> None:
    """Two projects placing into one target dir: when one drops a model the other still wants,
    the files stay (and verify for the other); once neither wants it, they go."""
    shared = '[settings]\ntarget = "../shared"\n'
    one = write_manifest(tmp_path / "one", {"a": "org/a", "b": "org/b"}, head=shared)
    two = write_manifest(tmp_path / "two", {"b": "org/b"}, head=shared)
    sync(one, store, env)
    second = sync(two, store, env)
    assert second.applied is not None
    assert second.applied.placed == 0  # the links project one made are already right
    write_manifest(tmp_path / "one", {"a": "org/a"}, head=shared)
    dropped = sync(one, store, env)
    assert dropped.applied is not None
    assert dropped.applied.removed == ()
    other = tmp_path / "shared" / "b" / "other.bin"
    assert other.exists()
    verify_project(VerifyRequest(manifest=two, store=store, environ=env))
    write_manifest(tmp_path / "two", {"a": "org/a"}, head=shared)
    gone = sync(two, store, env)
    assert gone.applied is not None
    assert gone.applied.removed == ("b/other.bin", "b/shared.bin")
    assert not other.exists()
    assert (tmp_path / "shared" / "a" / "weights.bin").read_bytes() == WEIGHTS
