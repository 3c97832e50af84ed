"""LFS objects belong to repositories: a writer cannot borrow the bytes of a repo it cannot read."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import CommitOperationCopy, HfApi

from modelsync.server.auth import TokenInfo
from modelsync.server.runner import ServerHandle
from tests.fixtures.hub import HttpAnswer, HubFactory, HubRepoFactory, HubTokens, http_request

MALLORY = "hf_modelsync_test_mallory_0123456789"
SECRET = os.urandom(20_000)
OPEN = os.urandom(20_000)
WEIGHTS = os.urandom(30_000)

# huggingface_hub 2.4.0 PUTs LFS bodies with `data=<file>`, which httpx deprecates (the client's
# warning, not the server's).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _start(hub_factory: HubFactory, hub_tokens: HubTokens) -> ServerHandle:
    """A server that also knows `mallory`, a writer of her own namespace only."""
    tokens = {**hub_tokens.table(), MALLORY: TokenInfo("mallory", "write")}
    return hub_factory(tokens=tokens)


@pytest.fixture
def server(hub_factory: HubFactory, hub_tokens: HubTokens) -> ServerHandle:
    """A hub with victim repos (gated, private, public) and mallory's empty `mallory/loot`."""
    handle = _start(hub_factory, hub_tokens)
    repos = HubRepoFactory(handle)
    repos("victim/gated", {"secret.gguf": SECRET}, gated="manual")
    repos("victim/private", {"secret.gguf": SECRET + b"!"}, private=True)
    repos("victim/public", {"open.gguf": OPEN})
    HfApi(endpoint=handle.endpoint, token=MALLORY).create_repo("mallory/loot")
    return handle


def _post(handle: ServerHandle, token: str, path: str, body: bytes) -> HttpAnswer:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return http_request(handle.endpoint, "POST", path, headers=headers, body=body)


def _commit_by_digest(
    handle: ServerHandle, token: str, repo_id: str, oid: str, size: int
) -> HttpAnswer:
    lines = [
        {"key": "header", "value": {"summary": "borrow"}},
        {"key": "lfsFile", "value": {"path": "x.gguf", "algo": "sha256", "oid": oid, "size": size}},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    return _post(handle, token, f"/api/models/{repo_id}/commit/main", body)


def _batch(
    handle: ServerHandle, token: str, repo_id: str, oid: str, size: int
) -> dict[str, object]:
    body = {"operation": "upload", "objects": [{"oid": oid, "size": size}]}
    answer = _post(
        handle, token, f"/{repo_id}.git/info/lfs/objects/batch", json.dumps(body).encode()
    )
    assert answer.status == 200
    obj = json.loads(answer.body)["objects"][0]
    assert isinstance(obj, dict)
    return obj


def _put(href: str, body: bytes) -> int:
    parts = urlsplit(href)
    return http_request(
        f"{parts.scheme}://{parts.netloc}", "PUT", f"{parts.path}?{parts.query}", body=body
    ).status


def _download(handle: ServerHandle, repo_id: str, path: str) -> HttpAnswer:
    """GET a file anonymously, following the redirect of LFS files to the CDN."""
    answer = http_request(handle.endpoint, "GET", f"/{repo_id}/resolve/main/{path}")
    if answer.status != 302:
        return answer
    target = urlsplit(answer.headers["location"])
    return http_request(
        f"{target.scheme}://{target.netloc}", "GET", f"{target.path}?{target.query}"
    )


def test_commit_cannot_borrow_objects_of_gated_or_private_repos(server: ServerHandle) -> None:
    """A writer committing the digest of a gated or private file into its own repo gets a 400."""
    tree = HfApi(endpoint=server.endpoint).list_repo_tree("victim/gated")
    listed = {getattr(item, "path", ""): getattr(item, "lfs", None) for item in tree}
    gated_lfs = listed["secret.gguf"]
    assert gated_lfs is not None
    assert gated_lfs.sha256 == _sha(SECRET)  # the Hub shows it too: the digest is no secret
    head = server.repos.head("mallory/loot").id
    for data in (SECRET, SECRET + b"!"):
        answer = _commit_by_digest(server, MALLORY, "mallory/loot", _sha(data), len(data))
        assert answer.status == 400, answer.body
        assert "not uploaded to mallory/loot" in json.loads(answer.body)["error"]
    assert server.repos.head("mallory/loot").id == head
    leaked = _download(server, "mallory/loot", "x.gguf")
    assert leaked.status == 404


def test_lfs_batch_and_verify_answer_for_this_repo_only(server: ServerHandle) -> None:
    """The batch asks for an upload of bytes stored only elsewhere; a wrong PUT proves nothing."""
    oid = _sha(SECRET)
    obj = _batch(server, MALLORY, "mallory/loot", oid, len(SECRET))
    actions = obj.get("actions")
    assert isinstance(actions, dict), obj  # not "already stored": the batch is no oracle
    verify = _post(
        server,
        MALLORY,
        "/mallory/loot.git/info/lfs/objects/verify",
        json.dumps({"oid": oid, "size": len(SECRET)}).encode(),
    )
    assert verify.status == 404
    assert _put(actions["upload"]["href"], os.urandom(len(SECRET))) == 400
    answer = _commit_by_digest(server, MALLORY, "mallory/loot", oid, len(SECRET))
    assert answer.status == 400
    assert server.repos.counters.events("lfs.stored", "mallory/loot") == []


def test_objects_of_readable_repos_can_be_committed_by_digest(server: ServerHandle) -> None:
    """A writer may commit the digest of a file in a repo it can read (a server-side copy)."""
    answer = _commit_by_digest(server, MALLORY, "mallory/loot", _sha(OPEN), len(OPEN))
    assert answer.status == 200, answer.body
    copied = _download(server, "mallory/loot", "x.gguf")
    assert (copied.status, copied.body) == (200, OPEN)


def test_same_content_uploads_to_two_repos_with_the_official_client(
    hub: ServerHandle, hub_tokens: HubTokens, tmp_path: Path, hf_cache: Path
) -> None:
    """huggingface_hub uploads the same bytes again to a second repo and both serve them."""
    api = HfApi(endpoint=hub.endpoint, token=hub_tokens.writer)
    local = tmp_path / "w.safetensors"
    local.write_bytes(WEIGHTS)
    for repo_id in ("tester/one", "tester/two"):
        api.create_repo(repo_id)
        api.upload_file(path_or_fileobj=local, path_in_repo="w.safetensors", repo_id=repo_id)
    assert hub.repos.counters.requests("lfs_upload") == 2
    api.upload_file(path_or_fileobj=local, path_in_repo="again.safetensors", repo_id="tester/two")
    assert hub.repos.counters.requests("lfs_upload") == 2  # already in tester/two: no PUT
    for repo_id in ("tester/one", "tester/two"):
        path = api.hf_hub_download(repo_id, "w.safetensors", cache_dir=hf_cache / repo_id)
        assert Path(path).read_bytes() == WEIGHTS


def test_uploads_belong_to_their_repo_across_a_restart(
    hub_factory: HubFactory, hub_tokens: HubTokens
) -> None:
    """An uploaded, uncommitted object stays usable in its repo after a restart, not elsewhere."""
    first = _start(hub_factory, hub_tokens)
    HfApi(endpoint=first.endpoint, token=hub_tokens.writer).create_repo("tester/pending")
    HfApi(endpoint=first.endpoint, token=MALLORY).create_repo("mallory/loot")
    oid, size = _sha(WEIGHTS), len(WEIGHTS)
    actions = _batch(first, hub_tokens.writer, "tester/pending", oid, size)["actions"]
    assert isinstance(actions, dict)
    assert _put(actions["upload"]["href"], WEIGHTS) == 200
    first.close()
    second = _start(hub_factory, hub_tokens)
    assert "actions" not in _batch(second, hub_tokens.writer, "tester/pending", oid, size)
    borrowed = _commit_by_digest(second, MALLORY, "mallory/loot", oid, size)
    assert borrowed.status == 400  # an upload nobody committed is readable by nobody
    assert _commit_by_digest(second, hub_tokens.writer, "tester/pending", oid, size).status == 200
    served = _download(second, "tester/pending", "x.gguf")
    assert (served.status, served.body) == (200, WEIGHTS)


def test_official_copy_within_a_repo_still_works(hub: ServerHandle, hub_tokens: HubTokens) -> None:
    """CommitOperationCopy names an LFS file of the same repo by digest, which stays allowed."""
    api = HfApi(endpoint=hub.endpoint, token=hub_tokens.writer)
    api.create_repo("tester/copy")
    api.upload_file(path_or_fileobj=WEIGHTS, path_in_repo="w.safetensors", repo_id="tester/copy")
    api.create_commit(
        "tester/copy",
        [CommitOperationCopy(src_path_in_repo="w.safetensors", path_in_repo="c.safetensors")],
        commit_message="copy",
    )
    files = hub.repos.head("tester/copy").files
    assert files["c.safetensors"].sha256 == files["w.safetensors"].sha256 == _sha(WEIGHTS)
    assert hub.repos.counters.requests("lfs_upload") == 1
