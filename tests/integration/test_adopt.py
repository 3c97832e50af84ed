"""Adoption: bytes already on the machine (Hugging Face's cache, Ollama's blobs) enter the store
after a hash check instead of being downloaded again."""

from __future__ import annotations

import asyncio
import hashlib
import random
import shutil
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download

from modelsync.net.retry import RetryPolicy
from modelsync.ops.lock import LockRequest, lock_project
from modelsync.ops.sync import SyncReport, SyncRequest, sync_project
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from modelsync.sync.adopt import hf_hub_cache, ollama_models
from modelsync.sync.model import LinkMode
from tests.fixtures.hub import HubRepoFactory, RepoRef

FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)
WEIGHTS = random.Random(7).randbytes(400_000)  # noqa: S311 - reproducible test data
DIGEST = hashlib.sha256(WEIGHTS).hexdigest()


@pytest.fixture
def repo(hub_repo: HubRepoFactory) -> RepoRef:
    """org/adopt with one LFS file."""
    return hub_repo("org/adopt", {"weights.bin": WEIGHTS})


@pytest.fixture
def project(tmp_path: Path, hub: ServerHandle, repo: RepoRef) -> Path:
    """A project locked against the hub (the lock costs requests; the sync is what is counted)."""
    folder = tmp_path / "p"
    folder.mkdir()
    manifest = folder / "models.toml"
    manifest.write_text(f'[models.w]\nsource = "hf://{repo.repo_id}"\ninclude = ["*"]\n')
    request = LockRequest(manifest=manifest, environ={"HF_ENDPOINT": hub.endpoint}, retry=FAST)
    asyncio.run(lock_project(request))
    return manifest


def sync(manifest: Path, store: Path, env: dict[str, str], **options: object) -> SyncReport:
    request = SyncRequest(manifest=manifest, store=store, environ=env, retry=FAST, **options)  # type: ignore[arg-type]
    return asyncio.run(sync_project(request))


def test_cache_locations_follow_each_tools_rules(tmp_path: Path) -> None:
    """HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub; OLLAMA_MODELS, else
    ~/.ollama/models."""
    home = str(tmp_path)
    assert hf_hub_cache({"HF_HUB_CACHE": "/x", "HF_HOME": "/y", "HOME": home}) == Path("/x")
    assert hf_hub_cache({"HF_HOME": "/y", "HOME": home}) == Path("/y/hub")
    assert hf_hub_cache({"HOME": home}) == tmp_path / ".cache" / "huggingface" / "hub"
    assert ollama_models({"OLLAMA_MODELS": "/o", "HOME": home}) == Path("/o")
    assert ollama_models({"HOME": home}) == tmp_path / ".ollama" / "models"


def test_file_in_the_hugging_face_cache_is_adopted_not_downloaded(
    hub: ServerHandle, repo: RepoRef, project: Path, tmp_path: Path
) -> None:
    """A file huggingface_hub already downloaded is hashed and hardlinked into the store; the
    sync sends no request at all, even offline, and reports it as adopted."""
    cache = tmp_path / "hf-cache"
    hf_hub_download(
        repo.repo_id, "weights.bin", revision=repo.commit, endpoint=hub.endpoint, cache_dir=cache
    )
    cached = cache / "models--org--adopt" / "blobs" / DIGEST
    assert cached.is_file()
    before = hub.repos.counters.requests()
    env = {"HF_HUB_CACHE": str(cache), "OLLAMA_MODELS": str(tmp_path / "none")}
    report = sync(project, tmp_path / "store", env, offline=True)
    assert hub.repos.counters.requests() == before
    assert report.applied is not None
    assert report.applied.adopted == (("w/weights.bin", "huggingface"),)
    assert (report.applied.fetched, report.applied.bytes_fetched) == (0, 0)
    assert report.applied.bytes_adopted == len(WEIGHTS)
    blob = StoreLayout(tmp_path / "store").blob_path(DIGEST)
    assert blob.stat().st_ino == cached.stat().st_ino  # hardlinked: no byte copied
    assert (project.parent / "models" / "w" / "weights.bin").read_bytes() == WEIGHTS


def test_ollama_blob_is_adopted(hub: ServerHandle, project: Path, tmp_path: Path) -> None:
    """A blob in Ollama's store (`blobs/sha256-<hex>`) is adopted, zero bytes downloaded."""
    ollama = tmp_path / "ollama"
    (ollama / "blobs").mkdir(parents=True)
    (ollama / "blobs" / f"sha256-{DIGEST}").write_bytes(WEIGHTS)
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "none"),
        "OLLAMA_MODELS": str(ollama),
    }
    report = sync(project, tmp_path / "store", env)
    assert report.applied is not None
    assert report.applied.adopted == (("w/weights.bin", "ollama"),)
    assert hub.repos.counters.bytes_sent("org/adopt", "weights.bin") == 0


def test_a_cached_file_with_other_bytes_is_not_adopted(
    hub: ServerHandle, project: Path, tmp_path: Path
) -> None:
    """A cache file named by the digest but holding other bytes fails the hash check: it is
    left alone and the blob is downloaded."""
    ollama = tmp_path / "ollama"
    (ollama / "blobs").mkdir(parents=True)
    liar = ollama / "blobs" / f"sha256-{DIGEST}"
    liar.write_bytes(b"\0" * len(WEIGHTS))
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "none"),
        "OLLAMA_MODELS": str(ollama),
    }
    report = sync(project, tmp_path / "store", env)
    assert report.applied is not None
    assert report.applied.adopted == ()
    assert report.applied.fetched == 1
    assert hub.repos.counters.bytes_sent("org/adopt", "weights.bin") == len(WEIGHTS)
    assert liar.read_bytes() == b"\0" * len(WEIGHTS)
    assert list((tmp_path / "store" / "tmp").iterdir()) == []  # the rejected temp is gone


def test_a_placed_copy_brings_a_lost_blob_back(
    hub: ServerHandle, project: Path, tmp_path: Path
) -> None:
    """When the store lost a blob (a wiped store, a gc) but an untouched copy sync placed is
    still there, the copy is hashed and adopted instead of downloading it again."""
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "none"),
        "OLLAMA_MODELS": str(tmp_path / "none"),
    }
    store = tmp_path / "store"
    sync(project, store, env, link=LinkMode.COPY)
    sent = hub.repos.counters.bytes_sent("org/adopt", "weights.bin")
    shutil.rmtree(store)
    report = sync(project, store, env, link=LinkMode.COPY)
    assert report.applied is not None
    assert report.applied.adopted == (("w/weights.bin", "placed"),)
    assert hub.repos.counters.bytes_sent("org/adopt", "weights.bin") == sent
    assert StoreLayout(store).blob_path(DIGEST).read_bytes() == WEIGHTS
