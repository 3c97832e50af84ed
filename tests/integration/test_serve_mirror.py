"""`modelsync serve --lock` as a real process: a LAN mirror of locked repos from a blob store."""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from huggingface_hub import hf_hub_download, snapshot_download

from modelsync.lockfile.io import read_lock
from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory, HubTokens, http_request
from tests.fixtures.mirror import (
    CONFIG,
    MANIFEST,
    MIRROR_REPO,
    WEIGHTS,
    MirrorFactory,
    client_env,
    project_at,
    run_in,
)

SERVE_TOKEN = "mirror-token-0123456789abcdef"


def _locked_and_synced(
    run_cli: CliRunner, tmp_path: Path, hub: ServerHandle, store: Path, *, sync: bool = True
) -> Path:
    """Project `a` locked against the upstream hub (and synced into `store`); its lock."""
    project = project_at(tmp_path / "a")
    env = client_env(hub.endpoint, tmp_path)
    result = run_in(run_cli, project, store, env, "lock")
    assert result.exit_code == 0, result.stderr
    if sync:
        result = run_in(run_cli, project, store, env, "sync")
        assert result.exit_code == 0, result.stderr
    return project.lock


def test_hf_client_downloads_locked_files_from_the_mirror(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    upstream_repo: str,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
    hf_cache: Path,
) -> None:
    """huggingface_hub gets the locked bytes at the locked commit; `main` names that commit
    even after upstream moved on; the store's blob is served, nothing copied for it."""
    store = tmp_path / "mirror-store"
    lock = _locked_and_synced(run_cli, tmp_path, hub, store)
    blobs_before = sorted(p.name for p in (store / "blobs").rglob("*") if p.is_file())
    mirror = mirror_factory("--lock", str(lock), store=store)
    hub.repos.import_directory(MIRROR_REPO)  # unchanged upstream: the same commit
    weights = hf_hub_download(
        MIRROR_REPO, "weights.bin", endpoint=mirror.endpoint, cache_dir=hf_cache
    )
    assert Path(weights).read_bytes() == WEIGHTS
    folder = snapshot_download(MIRROR_REPO, endpoint=mirror.endpoint, cache_dir=hf_cache)
    assert sorted(p.name for p in Path(folder).iterdir()) == ["config.json", "weights.bin"]
    assert (Path(folder) / "config.json").read_text() == CONFIG
    head = http_request(mirror.endpoint, "HEAD", f"/{MIRROR_REPO}/resolve/main/config.json")
    assert head.headers["x-repo-commit"] == upstream_repo
    # A small text file's ETag is its git blob id, computed from the bytes (as the Hub does).
    git_id = hashlib.sha1(f"blob {len(CONFIG)}\0{CONFIG}".encode()).hexdigest()  # noqa: S324
    assert head.headers["etag"] == f'"{git_id}"'
    assert sorted(p.name for p in (store / "blobs").rglob("*") if p.is_file()) == blobs_before


def test_client_project_locks_and_syncs_through_the_mirror(
    hub: ServerHandle,
    upstream_repo: str,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
) -> None:
    """A project with a registry whose endpoint is the mirror locks the same commit and files
    and syncs them with no file byte coming from upstream."""
    store = tmp_path / "mirror-store"
    lock = _locked_and_synced(run_cli, tmp_path, hub, store)
    mirror = mirror_factory("--project", str(lock.parent), store=store)
    sent_before = hub.counters.bytes_sent()
    manifest = (
        f'[registries.lan]\ntype = "huggingface"\nendpoint = "{mirror.endpoint}"\n\n'
        + MANIFEST.replace("hf://", "lan://")
    )
    client = project_at(tmp_path / "b", manifest)
    env = client_env(hub.endpoint, tmp_path)  # the Hub is still upstream: `lan` is the mirror
    for command in ("lock", "sync"):
        result = run_in(run_cli, client, tmp_path / "client-store", env, command)
        assert result.exit_code == 0, result.stderr
    theirs, ours = read_lock(lock), read_lock(client.lock)
    assert theirs is not None
    assert ours is not None
    assert [(m.repo, m.commit, m.files) for m in ours.models] == [
        (m.repo, m.commit, m.files) for m in theirs.models
    ]
    assert ours.models[0].commit == upstream_repo
    assert (client.placed / "weights.bin").read_bytes() == WEIGHTS
    assert (client.placed / "config.json").read_text() == CONFIG
    assert hub.counters.bytes_sent() == sent_before


def test_only_locked_repos_and_files_are_served(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    upstream_repo: str,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
) -> None:
    """An unlocked repo, an unlocked file, an unknown revision: 404 with the Hub's codes;
    uploads: 403 (read-only)."""
    hub_repo("org/other", {"a.txt": "other"})
    store = tmp_path / "mirror-store"
    lock = _locked_and_synced(run_cli, tmp_path, hub, store)
    mirror = mirror_factory("--lock", str(lock), store=store)
    cases = {
        "/api/models/org/other": "RepoNotFound",
        "/org/other/resolve/main/a.txt": "RepoNotFound",
        f"/{MIRROR_REPO}/resolve/main/notes.txt": "EntryNotFound",
        f"/{MIRROR_REPO}/resolve/v2/weights.bin": "RevisionNotFound",
    }
    for path, code in cases.items():
        answer = http_request(mirror.endpoint, "GET", path)
        assert (answer.status, answer.headers.get("x-error-code")) == (404, code), path
    create = http_request(
        mirror.endpoint, "POST", "/api/repos/create", body=b'{"name": "x", "organization": "o"}'
    )
    assert create.status == 403
    commit = http_request(mirror.endpoint, "POST", f"/api/models/{MIRROR_REPO}/commit/main")
    assert commit.status == 403


def test_token_is_required_when_configured(
    hub: ServerHandle,
    upstream_repo: str,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
) -> None:
    """With MODELSYNC_SERVE_TOKEN set, a request without it is a 401; a client that sends it
    syncs; the token never appears in the mirror's log."""
    store = tmp_path / "mirror-store"
    lock = _locked_and_synced(run_cli, tmp_path, hub, store)
    mirror = mirror_factory(
        "--lock", str(lock), store=store, env={"MODELSYNC_SERVE_TOKEN": SERVE_TOKEN}
    )
    path = f"/{MIRROR_REPO}/resolve/main/config.json"
    assert http_request(mirror.endpoint, "GET", path).status == 401
    wrong = {"Authorization": "Bearer nope"}
    assert http_request(mirror.endpoint, "GET", path, headers=wrong).status == 401
    right = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    assert http_request(mirror.endpoint, "GET", path, headers=right).body == CONFIG.encode()
    client = project_at(tmp_path / "b")
    env = {**client_env(mirror.endpoint, tmp_path), "MODELSYNC_REGISTRY_HF_TOKEN": SERVE_TOKEN}
    result = run_in(run_cli, client, tmp_path / "client-store", env, "sync")
    assert result.exit_code == 0, result.stderr
    assert SERVE_TOKEN not in mirror.log.read_text()


def test_pull_through_fetches_each_blob_once_for_concurrent_clients(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    upstream_repo: str,
    run_cli: CliRunner,
    run_cli_process: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
) -> None:
    """Four clients syncing at once from an empty pull-through mirror all get the files; the
    upstream sent each file's bytes once, and the mirror's store keeps them (past a `gc`)."""
    store = tmp_path / "mirror-store"
    lock = _locked_and_synced(run_cli, tmp_path, hub, store, sync=False)
    hashed_by_lock = hub.counters.bytes_sent(MIRROR_REPO, "config.json")  # a small file's digest
    mirror = mirror_factory("--lock", str(lock), "--pull-through", hub.endpoint, store=store)
    clients = []
    for n in range(4):
        client = project_at(tmp_path / f"c{n}")
        client.lock.write_bytes(lock.read_bytes())
        clients.append(client)
    env = client_env(mirror.endpoint, tmp_path)

    def sync(n: int) -> int:
        client = clients[n]
        args = ("-m", str(client.manifest), "--store", str(client.folder / "store"))
        return run_cli_process(*args, "sync", "--frozen", env=env).exit_code

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(sync, range(4))) == [0, 0, 0, 0]
    for client in clients:
        assert (client.placed / "weights.bin").read_bytes() == WEIGHTS
    assert hub.counters.bytes_sent(MIRROR_REPO, "weights.bin") == len(WEIGHTS)
    assert hub.counters.bytes_sent(MIRROR_REPO, "config.json") - hashed_by_lock == len(CONFIG)
    assert run_cli("--store", str(store), "gc").exit_code == 0
    sha = hashlib.sha256(WEIGHTS).hexdigest()
    assert (store / "blobs" / "sha256" / sha[:2] / sha).read_bytes() == WEIGHTS


def test_pull_through_hf_carries_the_hub_token_upstream(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    upstream_repo: str,
    hub_tokens: HubTokens,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
) -> None:
    """`--pull-through hf` is `$HF_ENDPOINT` with the Hub token, so a gated upstream repo is
    pulled; the token never appears in the mirror's log."""
    hub.repos.set_settings(MIRROR_REPO, gated="auto")
    store = tmp_path / "mirror-store"
    project = project_at(tmp_path / "a")
    env = {**client_env(hub.endpoint, tmp_path), "HF_TOKEN": hub_tokens.reader}
    assert run_in(run_cli, project, store, env, "lock").exit_code == 0
    mirror = mirror_factory(
        "--lock", str(project.lock), "--pull-through", "hf", store=store, env=env
    )
    answer = http_request(mirror.endpoint, "GET", f"/{MIRROR_REPO}/resolve/main/weights.bin")
    assert answer.status == 200
    assert answer.body == WEIGHTS
    assert hub_tokens.reader not in mirror.log.read_text()


def test_the_mirror_follows_its_lock_when_it_changes(  # noqa: PLR0917 - pytest fixtures
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    upstream_repo: str,
    run_cli: CliRunner,
    mirror_factory: MirrorFactory,
    tmp_path: Path,
) -> None:
    """`lock --upgrade` on the mirror's project: the running mirror serves the new commit
    (it looks at its locks at most once a second) without a restart."""
    store = tmp_path / "mirror-store"
    lock = _locked_and_synced(run_cli, tmp_path, hub, store)
    mirror = mirror_factory("--lock", str(lock), store=store)
    moved = hub_repo(MIRROR_REPO, {"config.json": '{"moved": true}\n'}).commit
    env = client_env(hub.endpoint, tmp_path)
    project = project_at(lock.parent)
    assert run_in(run_cli, project, store, env, "lock", "--upgrade").exit_code == 0
    assert run_in(run_cli, project, store, env, "sync").exit_code == 0
    deadline = time.monotonic() + 20
    while True:
        info = json.loads(http_request(mirror.endpoint, "GET", f"/api/models/{MIRROR_REPO}").body)
        if info["sha"] == moved or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert info["sha"] == moved
    answer = http_request(mirror.endpoint, "GET", f"/{MIRROR_REPO}/resolve/main/config.json")
    assert answer.body == b'{"moved": true}\n'
