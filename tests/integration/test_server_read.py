"""Read API of the Hub-compatible server, judged by the official huggingface_hub client."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile, RepoFolder

from modelsync.server import gitobj
from modelsync.server.runner import ServerHandle
from tests.fixtures.hub import HubFactory, HubRepoFactory, HubTokens, http_request
from tests.fixtures.models import GgufFactory

WEIGHTS = os.urandom(20_000)
README = "---\nlicense: mit\ntags: [text-generation]\n---\n# Tiny\n"
CONFIG = b'{"hidden_size": 8}\n'


@pytest.fixture
def tiny(hub_repo: HubRepoFactory) -> str:
    """A small repository with an LFS file, a card and a nested regular file."""
    hub_repo(
        "org/tiny",
        {"model.safetensors": WEIGHTS, "README.md": README, "configs/config.json": CONFIG},
    )
    return "org/tiny"


def test_model_info_reports_sizes_blob_ids_and_lfs_sha256(hub: ServerHandle, tiny: str) -> None:
    """`files_metadata=True` gives each file's size, git blob id and, for LFS, its SHA-256."""
    info = HfApi(endpoint=hub.endpoint).model_info(tiny, files_metadata=True)
    assert info.sha == hub.repos.head(tiny).id
    assert info.last_modified is not None
    assert info.last_modified.tzinfo is not None
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == {"model.safetensors", "README.md", "configs/config.json"}
    weights = siblings["model.safetensors"]
    assert weights.size == len(WEIGHTS)
    assert weights.lfs is not None
    assert weights.lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert weights.lfs.size == len(WEIGHTS)
    pointer = gitobj.lfs_pointer(weights.lfs.sha256, len(WEIGHTS))
    assert weights.lfs.pointer_size == len(pointer)
    assert weights.blob_id == gitobj.git_blob_oid(pointer)
    config = siblings["configs/config.json"]
    assert config.lfs is None
    assert config.size == len(CONFIG)
    assert config.blob_id == gitobj.git_blob_oid(CONFIG)


def test_model_info_carries_card_data_and_tags(hub: ServerHandle, tiny: str) -> None:
    """README front matter becomes `cardData` and tags; dates end in `.000Z` on the wire."""
    info = HfApi(endpoint=hub.endpoint).model_info(tiny)
    assert info.card_data is not None
    assert info.card_data.license == "mit"
    assert info.tags is not None
    assert {"text-generation", "license:mit"} <= set(info.tags)
    answer = http_request(hub.endpoint, "GET", f"/api/models/{tiny}")
    body = json.loads(answer.body)
    assert body["lastModified"].endswith(".000Z")
    assert body["createdAt"].endswith(".000Z")
    assert body["siblings"][0] == {"rfilename": "README.md"}
    assert body["usedStorage"] == len(WEIGHTS) + len(README) + len(CONFIG)


def test_expand_returns_only_the_requested_fields(hub: ServerHandle, tiny: str) -> None:
    """Repeated `expand` answers `id` plus exactly those fields."""
    path = f"/api/models/{tiny}?expand=sha&expand=downloads&expand=siblings"
    body = json.loads(http_request(hub.endpoint, "GET", path).body)
    assert set(body) == {"id", "sha", "downloads", "siblings"}
    info = HfApi(endpoint=hub.endpoint).model_info(tiny, expand=["likes"])
    assert info.likes == 0
    assert info.sha is None


def test_revisions_by_tag_commit_and_escaped_refs(
    hub: ServerHandle, hub_repo: HubRepoFactory
) -> None:
    """Branches, tags and 40-hex commits resolve; an unknown escaped ref is RevisionNotFound."""
    first = hub_repo("org/revs", {"a.txt": "one"})
    hub.repos.create_tag("org/revs", "v1", first.commit)
    second = hub_repo("org/revs", {"a.txt": "two"})
    api = HfApi(endpoint=hub.endpoint)
    assert api.model_info("org/revs").sha == second.commit
    assert api.model_info("org/revs", revision="v1").sha == first.commit
    assert api.model_info("org/revs", revision=first.commit).sha == first.commit
    with pytest.raises(RevisionNotFoundError):
        api.model_info("org/revs", revision="refs/pr/1")
    answer = http_request(hub.endpoint, "GET", "/api/models/org/revs/revision/refs%2Fpr%2F1")
    assert answer.status == 404
    assert answer.headers["x-error-code"] == "RevisionNotFound"


def test_gguf_repository_reports_summary_and_tag(
    hub: ServerHandle, hub_repo: HubRepoFactory, gguf_factory: GgufFactory
) -> None:
    """A repository with a GGUF file is tagged `gguf` and carries the file's summary."""
    path = gguf_factory("tiny-Q4_K_M.gguf")
    hub_repo("org/tiny-GGUF", {"tiny-Q4_K_M.gguf": path})
    info = HfApi(endpoint=hub.endpoint).model_info("org/tiny-GGUF")
    assert info.tags is not None
    assert "gguf" in info.tags
    assert isinstance(info.gguf, dict)
    assert isinstance(info.gguf["total"], int)
    assert info.gguf["total"] > 0
    assert info.gguf["architecture"] == "llama"
    listed = list(HfApi(endpoint=hub.endpoint).list_models(filter="gguf", expand=["gguf"]))
    assert [m.id for m in listed] == ["org/tiny-GGUF"]
    assert listed[0].gguf == info.gguf


def test_list_models_searches_filters_and_sorts(
    hub: ServerHandle, hub_repo: HubRepoFactory
) -> None:
    """search, author, gated and sort (always descending) select and order repositories."""
    hub_repo("org/alpha-GGUF", {"a.txt": "a"}, downloads=10, likes=1)
    hub_repo("org/beta-GGUF", {"a.txt": "b"}, downloads=30, likes=0, gated="auto")
    hub_repo("tester/gamma", {"a.txt": "c"}, downloads=20, likes=5)
    api = HfApi(endpoint=hub.endpoint)
    by_downloads = [m.id for m in api.list_models(sort="downloads")]
    assert by_downloads == ["org/beta-GGUF", "tester/gamma", "org/alpha-GGUF"]
    assert [m.id for m in api.list_models(sort="likes", limit=2)] == [
        "tester/gamma",
        "org/alpha-GGUF",
    ]
    assert [m.id for m in api.list_models(search="gguf", author="org", sort="downloads")] == [
        "org/beta-GGUF",
        "org/alpha-GGUF",
    ]
    assert [m.id for m in api.list_models(gated=True)] == ["org/beta-GGUF"]
    first = next(iter(api.list_models(sort="downloads", full=True)))
    assert first.downloads == 30
    assert first.sha == hub.repos.head("org/beta-GGUF").id


def test_listings_paginate_with_absolute_links(
    hub_factory: HubFactory, hub_tokens: HubTokens
) -> None:
    """With a small page size, models, tree and commits follow absolute `Link` URLs to the end."""
    hub = hub_factory(page_size=2)
    for index in range(5):
        folder = hub.repos.repo_folder(f"org/m{index}")
        folder.mkdir(parents=True)
        (folder / "f.txt").write_text(str(index))
        hub.repos.import_directory(f"org/m{index}")
    for index in range(4):
        hub.repos.commit("org/m0", "main", [], f"noop {index}")  # no-ops: history stays 1 long
    api = HfApi(endpoint=hub.endpoint, token=hub_tokens.reader)
    assert sorted(m.id for m in api.list_models()) == [f"org/m{i}" for i in range(5)]
    assert hub.repos.counters.requests("list_models") == 3
    first_page = http_request(hub.endpoint, "GET", "/api/models?sort=likes")
    link = first_page.headers["link"]
    assert link.startswith(f"<{hub.endpoint}/api/models?")
    assert "cursor=2" in link
    assert link.endswith('>; rel="next"')
    folder = hub.repos.repo_folder("org/m0")
    for name in "abcd":
        (folder / f"{name}.txt").write_text(name)
    hub.repos.import_directory("org/m0")
    tree = list(api.list_repo_tree("org/m0"))
    assert [e.path for e in tree] == ["a.txt", "b.txt", "c.txt", "d.txt", "f.txt"]
    assert hub.repos.counters.requests("tree") == 3
    assert len(api.list_repo_commits("org/m0")) == 2


def test_list_repo_tree_recursive_and_folder(hub: ServerHandle, tiny: str) -> None:
    """Tree listings show folders, recurse on request, list one folder, and 404 a missing one."""
    api = HfApi(endpoint=hub.endpoint)
    top = list(api.list_repo_tree(tiny))
    assert [(type(e).__name__, e.path) for e in top] == [
        ("RepoFile", "README.md"),
        ("RepoFolder", "configs"),
        ("RepoFile", "model.safetensors"),
    ]
    everything = {e.path: e for e in api.list_repo_tree(tiny, recursive=True)}
    assert set(everything) == {"README.md", "configs", "configs/config.json", "model.safetensors"}
    weights = everything["model.safetensors"]
    assert isinstance(weights, RepoFile)
    assert weights.lfs is not None
    assert weights.lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert weights.xet_hash is None
    folder = everything["configs"]
    assert isinstance(folder, RepoFolder)
    nested = list(api.list_repo_tree(tiny, path_in_repo="configs"))
    assert [e.path for e in nested] == ["configs/config.json"]
    expanded = list(api.list_repo_tree(tiny, path_in_repo="configs", expand=True))
    assert isinstance(expanded[0], RepoFile)
    assert expanded[0].last_commit is not None
    assert expanded[0].last_commit.oid == hub.repos.head(tiny).id
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree(tiny, path_in_repo="nope"))


def test_paths_info_skips_missing_paths(hub: ServerHandle, tiny: str) -> None:
    """paths-info answers files and folders that exist and leaves out the rest."""
    infos = HfApi(endpoint=hub.endpoint).get_paths_info(
        tiny, ["configs", "model.safetensors", "missing.txt"]
    )
    assert [(type(i).__name__, i.path) for i in infos] == [
        ("RepoFolder", "configs"),
        ("RepoFile", "model.safetensors"),
    ]


def test_refs_and_commits(hub: ServerHandle, hub_repo: HubRepoFactory) -> None:
    """Refs list branches and tags with targets; commits come newest first with authors."""
    first = hub_repo("org/hist", {"a.txt": "1"})
    hub.repos.create_branch("org/hist", "dev", first.commit)
    hub.repos.create_tag("org/hist", "v1", first.commit)
    second = hub_repo("org/hist", {"a.txt": "2"})
    api = HfApi(endpoint=hub.endpoint)
    refs = api.list_repo_refs("org/hist", include_pull_requests=True)
    assert {(b.name, b.target_commit) for b in refs.branches} == {
        ("main", second.commit),
        ("dev", first.commit),
    }
    assert [(t.ref, t.target_commit) for t in refs.tags] == [("refs/tags/v1", first.commit)]
    assert refs.pull_requests == []
    commits = api.list_repo_commits("org/hist", formatted=True)
    assert [c.commit_id for c in commits] == [second.commit, first.commit]
    assert commits[0].authors == ["modelsync"]
    assert [c.commit_id for c in api.list_repo_commits("org/hist", revision="dev")] == [
        first.commit
    ]


def test_private_repository_is_invisible_to_others(
    hub: ServerHandle, hub_repo: HubRepoFactory, hub_tokens: HubTokens
) -> None:
    """A private repo is a 404 RepoNotFound for anonymous and non-member callers only."""
    hub_repo("org/secret", {"a.txt": "s"}, private=True)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.endpoint).model_info("org/secret")
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.endpoint, token=hub_tokens.reader).model_info("org/secret")
    owner = HfApi(endpoint=hub.endpoint, token=hub_tokens.writer)
    assert owner.model_info("org/secret").private is True
    assert [m.id for m in HfApi(endpoint=hub.endpoint).list_models()] == []
    assert [m.id for m in owner.list_models()] == ["org/secret"]
    answer = http_request(hub.endpoint, "GET", "/org/secret/resolve/main/a.txt")
    assert answer.status == 404
    assert answer.headers["x-error-code"] == "RepoNotFound"


def test_whoami_and_bad_tokens(hub: ServerHandle, tiny: str, hub_tokens: HubTokens) -> None:
    """whoami names the token's user and role; an unknown token is a 401 everywhere."""
    me = HfApi(endpoint=hub.endpoint, token=hub_tokens.writer).whoami()
    assert me["name"] == "tester"
    assert me["auth"]["accessToken"]["role"] == "write"
    assert [o["name"] for o in me["orgs"]] == ["org"]
    with pytest.raises(HfHubHTTPError) as caught:
        HfApi(endpoint=hub.endpoint, token="hf_wrong").whoami()
    assert caught.value.response.status_code == 401
    answer = http_request(
        hub.endpoint, "GET", f"/api/models/{tiny}", headers={"Authorization": "Bearer hf_wrong"}
    )
    assert answer.status == 401
    assert json.loads(answer.body)["error"] == "Invalid credentials in Authorization header"
    assert "hf_wrong" not in answer.body.decode()


def test_unknown_api_routes_answer_json(hub: ServerHandle) -> None:
    """Unknown routes and wrong methods still answer JSON errors, never HTML or a 500."""
    missing = http_request(hub.endpoint, "GET", "/api/nothing-here")
    assert missing.status == 404
    assert "error" in json.loads(missing.body)
    wrong = http_request(hub.endpoint, "DELETE", "/api/models")
    assert wrong.status == 405
    assert "error" in json.loads(wrong.body)


def test_branches_and_tags_over_http(
    hub: ServerHandle, hub_repo: HubRepoFactory, hub_tokens: HubTokens
) -> None:
    """create_branch and create_tag point new refs at a revision; existing names are 409s."""
    ref = hub_repo("org/refs", {"a.txt": "a"})
    api = HfApi(endpoint=hub.endpoint, token=hub_tokens.writer)
    api.create_branch("org/refs", branch="dev")
    api.create_tag("org/refs", tag="v1.0", revision="dev")
    api.create_tag("org/refs", tag="v1.0", exist_ok=True)
    refs = api.list_repo_refs("org/refs")
    assert {(b.name, b.target_commit) for b in refs.branches} == {
        ("main", ref.commit),
        ("dev", ref.commit),
    }
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1.0", ref.commit)]
    with pytest.raises(HfHubHTTPError) as caught:
        api.create_branch("org/refs", branch="dev")
    assert caught.value.response.status_code == 409
    with pytest.raises(HfHubHTTPError) as reader:
        HfApi(endpoint=hub.endpoint, token=hub_tokens.reader).create_branch("org/refs", branch="x")
    assert reader.value.response.status_code == 403
