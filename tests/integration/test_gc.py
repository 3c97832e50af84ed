"""`gc` on a real store: blobs kept while a registered lock lists them, freed once it is gone
and forgotten; stale temp files removed after the grace period; in-flight downloads never
touched."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import shutil
import time
from pathlib import Path

import pytest

from modelsync.errors import BusyError, ExitCode
from modelsync.net.retry import RetryPolicy
from modelsync.ops.gc import GcRequest, gc_store
from modelsync.ops.sync import SyncRequest, sync_project
from modelsync.server.runner import ServerHandle
from modelsync.store import roots
from modelsync.store.gc import GRACE_S
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive
from modelsync.store.partial import claim_partial
from tests.fixtures.hub import HubRepoFactory

FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)
SHARED = random.Random(11).randbytes(120_000)  # noqa: S311 - reproducible test data
ONLY_B = random.Random(12).randbytes(80_000)  # noqa: S311 - reproducible test data


def sync(folder: Path, models: dict[str, str], store: Path, hub: ServerHandle) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "models.toml"
    manifest.write_text(
        "".join(f'[models.{n}]\nsource = "hf://{r}"\ninclude = ["*"]\n' for n, r in models.items())
    )
    env = {"HF_ENDPOINT": hub.endpoint, "HF_HUB_CACHE": "/nonexistent", "OLLAMA_MODELS": "/none"}
    request = SyncRequest(manifest=manifest, store=store, environ=env, retry=FAST)
    asyncio.run(sync_project(request))


@pytest.fixture
def two_projects(hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path) -> Path:
    """Project one uses org/a; project two uses org/a and org/b; returns the store."""
    hub_repo("org/a", {"shared.bin": SHARED})
    hub_repo("org/b", {"only-b.bin": ONLY_B})
    store = tmp_path / "store"
    sync(tmp_path / "one", {"a": "org/a"}, store, hub)
    sync(tmp_path / "two", {"a": "org/a", "b": "org/b"}, store, hub)
    return store


def test_gc_frees_only_blobs_no_existing_lock_lists(two_projects: Path, tmp_path: Path) -> None:
    """With both locks present nothing goes; once project two is deleted and forgotten, the
    blob only it used is freed (dry run first: bytes counted, nothing removed), the shared one
    stays."""
    store = two_projects
    layout = StoreLayout(store)
    assert not gc_store(GcRequest(store=store)).plan
    shutil.rmtree(tmp_path / "two")
    only_b = layout.blob_path(hashlib.sha256(ONLY_B).hexdigest())
    dry = gc_store(GcRequest(store=store, dry_run=True, forget_missing=True))
    assert [i.path for i in dry.plan.blobs] == [only_b]
    assert dry.plan.bytes_to_free >= len(ONLY_B)
    assert [r.lock for r in dry.plan.dead_roots] == [tmp_path / "two" / "models.lock"]
    assert only_b.exists()
    done = gc_store(GcRequest(store=store, forget_missing=True))
    assert done.freed == dry.plan.bytes_to_free
    assert not only_b.exists()
    assert layout.blob_path(hashlib.sha256(SHARED).hexdigest()).read_bytes() == SHARED
    assert [r.lock for r in roots.registered(layout)] == [tmp_path / "one" / "models.lock"]


def test_blob_still_linked_from_a_target_frees_nothing(two_projects: Path, tmp_path: Path) -> None:
    """A project whose lock is deleted but whose hardlinked files remain: its files keep the
    blob until the project is forgotten; then the blob goes from the store, the files stay
    intact, and gc says no bytes are freed by it."""
    (tmp_path / "two" / "models.lock").unlink()
    assert not gc_store(GcRequest(store=two_projects)).plan.blobs
    report = gc_store(GcRequest(store=two_projects, forget_missing=True))
    [item] = report.plan.blobs
    assert (item.size, item.frees) == (len(ONLY_B), 0)
    assert (tmp_path / "two" / "models" / "b" / "only-b.bin").read_bytes() == ONLY_B


def age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_stale_temp_files_go_after_the_grace_period_and_live_downloads_stay(
    two_projects: Path, tmp_path: Path
) -> None:
    """Old dead partials, adoption temps and placement temps are removed; a young partial, and
    an old one a live process still writes, are kept."""
    layout = StoreLayout(two_projects)
    live = claim_partial(layout, "a" * 64)
    live.write(b"in flight")
    age(live.path, GRACE_S * 2)
    dead = claim_partial(layout, "b" * 64)
    dead.write(b"abandoned")
    dead.close()
    age(dead.path, GRACE_S * 2)
    young = claim_partial(layout, "c" * 64)
    young.write(b"resumable tomorrow")
    young.close()
    adopt_temp = layout.tmp_dir / f"{'d' * 64}.1-abcd.adopt"
    adopt_temp.write_bytes(b"x")
    age(adopt_temp, GRACE_S * 2)
    place_temp = tmp_path / "one" / "models" / "a" / ".shared.bin.0badcafe.modelsync-tmp"
    place_temp.write_bytes(b"half")
    age(place_temp, GRACE_S * 2)
    try:
        report = gc_store(GcRequest(store=two_projects))
        assert report.plan.in_use == 1
        assert live.path.exists()
    finally:
        live.close()
    assert {i.path for i in report.plan.temps} == {dead.path, adopt_temp, place_temp}
    assert not dead.path.exists()
    assert not adopt_temp.exists()
    assert not place_temp.exists()
    assert young.path.exists()
    assert (tmp_path / "one" / "models" / "a" / "shared.bin").read_bytes() == SHARED


def test_gc_refuses_a_busy_store_without_waiting(two_projects: Path, tmp_path: Path) -> None:
    """With the store lock held elsewhere and `--no-wait`, gc exits 6 naming the holder."""
    shutil.rmtree(tmp_path / "two")
    lock = StoreLayout(two_projects).lock_path
    with exclusive(lock, wait=False), pytest.raises(BusyError) as busy:
        gc_store(GcRequest(store=two_projects, wait=False, forget_missing=True))
    assert busy.value.exit_code == ExitCode.BUSY
    assert busy.value.message.startswith(
        f"{two_projects / 'store.lock'}: held by pid {os.getpid()}"
    )
