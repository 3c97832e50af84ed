"""`lock` end to end against the project's Hub server: choices per profile, pins kept, bytes stable,
huggingface_hub agreeing on sizes, digests and commits, and nothing written on failure."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import tomllib
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, hf_hub_download
from pytest_httpserver import HTTPServer

from modelsync.errors import ExitCode, ModelsyncError, StaleError
from modelsync.net.retry import RetryPolicy
from modelsync.ops.lock import LockReport, LockRequest, lock_project
from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import make_gguf_repo, write_gguf
from tests.fixtures.hub import HubRepoFactory, HubTokens

REPO = "org/Mid-GGUF"
FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)
PROFILES = """
[profiles.gpu]
ram = "1GiB"
vram = "1652MiB"
[profiles.laptop]
ram = "1GiB"
"""


@pytest.fixture(scope="session")
def mid_repo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-layer synthetic GGUF repo (six quants, F16 in two shards, ~58 MB), written once."""
    folder = tmp_path_factory.mktemp("mid")
    make_gguf_repo(
        folder, "Mid", n_embd=512, n_ff=1024, n_layers=4, n_head=8, n_head_kv=2, context_length=8192
    )
    return folder


@pytest.fixture
def mid(hub_repo: HubRepoFactory, mid_repo_dir: Path) -> str:
    """The Mid repo on the running hub; returns its commit."""
    return hub_repo(REPO, {p.name: p for p in mid_repo_dir.iterdir()}).commit


def write_manifest(project: Path, models: str, profiles: str = PROFILES) -> Path:
    project.mkdir(parents=True, exist_ok=True)
    manifest = project / "models.toml"
    manifest.write_text(profiles + models)
    return manifest


def lock(
    manifest: Path, hub: ServerHandle, token: str | None = None, **options: object
) -> LockReport:
    environ = {"HF_ENDPOINT": hub.endpoint}
    if token:
        environ["HF_TOKEN"] = token
    request = LockRequest(manifest=manifest, environ=environ, retry=FAST, **options)  # type: ignore[arg-type]
    return asyncio.run(lock_project(request))


def read(manifest: Path) -> dict[str, Any]:
    return tomllib.loads(manifest.with_name("models.lock").read_text())


def test_two_profiles_get_their_own_choices(
    hub: ServerHandle, mid: str, mid_repo_dir: Path, tmp_path: Path, hub_tokens: HubTokens
) -> None:
    """A GPU profile takes the best full-GPU quant, a RAM-only one the best quality (with
    `best-full`, the F16 shards): two entries."""
    manifest = write_manifest(
        tmp_path / "p", f'[models.mid]\nsource = "hf://{REPO}"\nquant = "best-full"\n'
    )
    report = lock(manifest, hub, token=hub_tokens.reader)
    assert report.written
    data = read(manifest)
    entries = {m["profile"]: m for m in data["model"]}
    assert set(entries) == {"gpu", "laptop"}
    gpu, laptop = entries["gpu"], entries["laptop"]
    assert (gpu["quant"], laptop["quant"]) == ("Q5_K_M", "F16")
    assert gpu["commit"] == laptop["commit"] == mid
    assert gpu["reason"].startswith(
        "Q5_K_M: the best quality that fits (full GPU, est. 27 MiB of 28 MiB VRAM, ctx 8192); "
        "Q6_K only partial offload 3/4 layers"
    )
    assert [f["path"] for f in laptop["file"]] == [
        "Mid-F16-00001-of-00002.gguf",
        "Mid-F16-00002-of-00002.gguf",
    ]
    for entry in (gpu, laptop):
        for file in entry["file"]:
            local = (mid_repo_dir / file["path"]).read_bytes()
            assert (file["size"], file["sha256"]) == (len(local), hashlib.sha256(local).hexdigest())
    profiles = {p["name"]: p for p in data["profile"]}
    assert profiles["gpu"]["vram"] == 1652 << 20
    assert profiles["laptop"]["fingerprint"].startswith("sha256:")
    text = manifest.with_name("models.lock").read_text()
    assert hub_tokens.reader not in text
    assert "Authorization" not in text


def test_same_choice_on_every_profile_is_one_entry(
    hub: ServerHandle, mid: str, tmp_path: Path
) -> None:
    """When all profiles choose the same files the lock holds one entry without `profile`."""
    manifest = write_manifest(tmp_path / "p", f'[models.mid]\nsource = "{REPO}:Q4_K_M"\n')
    lock(manifest, hub)
    [entry] = read(manifest)["model"]
    assert "profile" not in entry
    assert entry["quant"] == "Q4_K_M"
    assert entry["reason"].startswith("Q4_K_M: the same on every profile: gpu full GPU")


def test_lock_agrees_with_huggingface_hub(
    hub: ServerHandle, mid: str, tmp_path: Path, hf_cache: Path
) -> None:
    """Sizes, sha256 and commit in the lock equal what the official client reports for the repo."""
    manifest = write_manifest(
        tmp_path / "p",
        f'[models.mid]\nsource = "hf://{REPO}"\n'
        f'[models.card]\nsource = "hf://{REPO}"\ninclude = ["*.md", "*.json", "*Q8_0*"]\n',
    )
    lock(manifest, hub)
    info = HfApi(endpoint=hub.endpoint).model_info(REPO, files_metadata=True)
    siblings = {s.rfilename: s for s in info.siblings or []}
    checked = 0
    for entry in read(manifest)["model"]:
        assert entry["commit"] == info.sha
        for file in entry["file"]:
            sibling = siblings[file["path"]]
            assert file["size"] == sibling.size
            if sibling.lfs is not None:
                assert file["sha256"] == sibling.lfs.sha256
            else:
                downloaded = hf_hub_download(
                    REPO, file["path"], revision=info.sha, endpoint=hub.endpoint, cache_dir=hf_cache
                )
                assert file["sha256"] == hashlib.sha256(Path(downloaded).read_bytes()).hexdigest()
            checked += 1
    assert checked >= 5


def test_rerun_is_byte_identical_and_writes_nothing(
    hub: ServerHandle, mid: str, tmp_path: Path
) -> None:
    """A second lock sends no request and leaves the file untouched; --upgrade with no upstream
    change asks the registry but still writes nothing."""
    manifest = write_manifest(tmp_path / "p", f'[models.mid]\nsource = "hf://{REPO}"\n')
    first = lock(manifest, hub)
    path = first.lock_path
    before = path.read_bytes()
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    again = lock(manifest, hub)
    assert (again.written, again.requests) == (False, 0)
    assert all(m.reused for m in again.models)
    upgraded = lock(manifest, hub, upgrade=True)
    assert upgraded.requests > 0
    assert not upgraded.written
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_pins_are_kept_until_upgraded(
    hub: ServerHandle, hub_repo: HubRepoFactory, mid: str, tmp_path: Path
) -> None:
    """Upstream moves: plain lock keeps commits; --upgrade-model moves only that model."""
    manifest = write_manifest(
        tmp_path / "p",
        f'[models.a]\nsource = "hf://{REPO}:Q4_K_M"\n[models.b]\nsource = "hf://{REPO}:Q8_0"\n',
    )
    lock(manifest, hub)
    moved = hub_repo(REPO, {"NEWS.md": "a new commit\n"}).commit
    assert moved != mid
    kept = lock(manifest, hub)
    assert not kept.written
    assert kept.requests == 0
    one = lock(manifest, hub, upgrade_models=("a",))
    assert one.written
    commits = {m["name"]: m["commit"] for m in read(manifest)["model"]}
    assert commits == {"a": moved, "b": mid}
    lock(manifest, hub, upgrade=True)
    commits = {m["name"]: m["commit"] for m in read(manifest)["model"]}
    assert commits == {"a": moved, "b": moved}


def test_changed_entry_is_re_resolved_at_its_pinned_commit(
    hub: ServerHandle, hub_repo: HubRepoFactory, mid: str, tmp_path: Path
) -> None:
    """Editing one model's quant re-resolves it at its locked commit; others are untouched."""
    models = f'[models.a]\nsource = "hf://{REPO}:Q4_K_M"\n[models.b]\nsource = "hf://{REPO}"\n'
    manifest = write_manifest(tmp_path / "p", models)
    lock(manifest, hub)
    hub_repo(REPO, {"NEWS.md": "moved\n"})
    write_manifest(tmp_path / "p", models.replace(":Q4_K_M", ":Q6_K"))
    report = lock(manifest, hub)
    assert report.written
    assert {m.name: m.reused for m in report.models} == {"a": False, "b": True}
    entries = {m["name"]: m for m in read(manifest)["model"]}
    assert entries["a"]["quant"] == "Q6_K"
    assert entries["a"]["commit"] == mid  # the pin survives the edit


def test_check_is_offline_and_exits_3_when_stale(
    hub: ServerHandle, mid: str, tmp_path: Path
) -> None:
    """--check passes for a fresh lock without network and raises StaleError after an edit."""
    manifest = write_manifest(tmp_path / "p", f'[models.mid]\nsource = "hf://{REPO}"\n')
    with pytest.raises(StaleError, match="there is no lock"):
        lock(manifest, hub, check=True)
    lock(manifest, hub)
    hub.close()  # no network from here on
    assert lock(manifest, hub, check=True).checked
    manifest.write_text(manifest.read_text() + "context = 2048\n")
    with pytest.raises(StaleError) as caught:
        lock(manifest, hub, check=True)
    assert caught.value.exit_code == ExitCode.STALE


def test_failures_write_nothing(hub: ServerHandle, mid: str, tmp_path: Path) -> None:
    """One bad model stops the lock before any write; an existing lock stays byte-identical."""
    good = f'[models.mid]\nsource = "hf://{REPO}"\n'
    manifest = write_manifest(
        tmp_path / "p", good + '[models.bad]\nsource = "org/Mid-GGUF:IQ4_XS"\n'
    )
    with pytest.raises(ModelsyncError) as caught:
        lock(manifest, hub)
    assert caught.value.exit_code == ExitCode.USAGE
    assert 'quantization "IQ4_XS" is not in hf:org/Mid-GGUF@' in str(caught.value)
    assert not manifest.with_name("models.lock").exists()
    write_manifest(tmp_path / "p", good)
    lock(manifest, hub)
    before = manifest.with_name("models.lock").read_bytes()
    write_manifest(tmp_path / "p", good + '[models.gone]\nsource = "org/does-not-exist"\n')
    with pytest.raises(ModelsyncError) as caught:
        lock(manifest, hub)
    assert caught.value.exit_code == ExitCode.USAGE
    assert manifest.with_name("models.lock").read_bytes() == before


def test_unreachable_registry_is_exit_5_and_writes_nothing(tmp_path: Path) -> None:
    """An endpoint nobody answers fails with exit 5 after the retries; no lock appears."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    manifest = write_manifest(tmp_path / "p", '[models.x]\nsource = "org/x"\n')
    request = LockRequest(
        manifest=manifest, environ={"HF_ENDPOINT": f"http://127.0.0.1:{port}"}, retry=FAST
    )
    with pytest.raises(ModelsyncError) as caught:
        asyncio.run(lock_project(request))
    assert caught.value.exit_code == ExitCode.REMOTE
    assert f"cannot reach http://127.0.0.1:{port}/api/models/org/x/revision/main" in str(
        caught.value
    )
    assert not manifest.with_name("models.lock").exists()


def test_hostile_registry_writes_nothing(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A registry listing a path with '..' is refused (exit 5) and no lock appears."""
    httpserver.expect_request("/api/models/org/x/revision/main").respond_with_json(
        {"id": "org/x", "sha": "a" * 40, "siblings": [{"rfilename": "../../evil.gguf", "size": 4}]}
    )
    manifest = write_manifest(
        tmp_path / "p",
        '[registries.evil]\ntype = "huggingface"\n'
        f'endpoint = "{httpserver.url_for("").rstrip("/")}"\n'
        '[models.x]\nsource = "evil://org/x"\n',
    )
    with pytest.raises(ModelsyncError) as caught:
        asyncio.run(lock_project(LockRequest(manifest=manifest, retry=FAST)))
    assert caught.value.exit_code == ExitCode.REMOTE
    assert "evil:org/x lists an unsafe file path '../../evil.gguf'" in str(caught.value)
    assert not manifest.with_name("models.lock").exists()


def test_many_models_on_one_repo_share_requests(
    hub: ServerHandle, mid: str, tmp_path: Path
) -> None:
    """Ten models on one repo cost one listing and one header read in all."""
    models = "".join(f'[models.m{i}]\nsource = "hf://{REPO}"\ncontext = 4096\n' for i in range(10))
    manifest = write_manifest(tmp_path / "p", models)
    report = lock(manifest, hub)
    assert len(report.models) == 10
    assert report.requests == 2


def test_explain_rows_cover_every_candidate(hub: ServerHandle, mid: str, tmp_path: Path) -> None:
    """--explain resolves (even when the lock is fresh) and returns one row per candidate."""
    manifest = write_manifest(tmp_path / "p", f'[models.mid]\nsource = "hf://{REPO}"\n')
    lock(manifest, hub)
    report = lock(manifest, hub, explain=True)
    assert not report.written
    [outcome] = report.models
    assert [e.profile for e in outcome.explained] == ["gpu", "laptop"]
    rows = outcome.explained[0].choice.rows
    assert [r.variant.display for r in rows] == [
        "F16",
        "Q8_0",
        "Q6_K",
        "Q5_K_M",
        "Q4_K_M",
        "Q3_K_M",
        "Q2_K",
    ]
    assert [r.status for r in rows].count("chosen") == 1
    assert rows[-1].status == "below floor"


def test_plain_url_source(httpserver: HTTPServer, tmp_path: Path) -> None:
    """A https file is locked with its size from the server, its header read, its sha256 pinned."""
    path = write_gguf(tmp_path / "tiny-Q8_0.gguf", quant="Q8_0")
    data = path.read_bytes()
    httpserver.expect_request("/files/tiny-Q8_0.gguf", method="HEAD").respond_with_data(data)
    httpserver.expect_request("/files/tiny-Q8_0.gguf", method="GET").respond_with_data(
        data[:2_097_152],
        status=206,
        headers={"Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"},
    )
    digest = hashlib.sha256(data).hexdigest()
    url = httpserver.url_for("/files/tiny-Q8_0.gguf")
    manifest = write_manifest(
        tmp_path / "p", f'[models.tiny]\nsource = "{url}"\nsha256 = "{digest}"\n', profiles=""
    )
    report = asyncio.run(lock_project(LockRequest(manifest=manifest, retry=FAST)))
    [entry] = report.models[0].entries
    assert (entry.url, entry.registry, entry.commit, entry.quant) == (url, "url", None, "Q8_0")
    assert [(f.path, f.size, f.sha256) for f in entry.files] == [
        ("tiny-Q8_0.gguf", len(data), digest)
    ]
    assert entry.reason.startswith("tiny-Q8_0.gguf: pinned by the source (")
