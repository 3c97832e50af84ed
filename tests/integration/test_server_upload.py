"""Uploads to the Hub-compatible server: create, preupload, LFS, commit, no-ops, persistence."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

from modelsync.server.runner import ServerHandle
from tests.fixtures.hub import HttpAnswer, HubFactory, HubRepoFactory, HubTokens, http_request

WEIGHTS = os.urandom(50_000)

# huggingface_hub 2.4.0 PUTs LFS bodies with `data=<file>`, which httpx2 deprecates; the warning
# is the client's, not the server's, and `filterwarnings = error` would turn it into a failure.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)


def _writer(hub: ServerHandle, tokens: HubTokens) -> HfApi:
    return HfApi(endpoint=hub.endpoint, token=tokens.writer)


def _post_json(hub: ServerHandle, token: str, path: str, body: object) -> HttpAnswer:
    return http_request(
        hub.endpoint,
        "POST",
        path,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        body=json.dumps(body).encode(),
    )


def _ndjson(*lines: object) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_create_repo_exist_ok_twice(hub: ServerHandle, hub_tokens: HubTokens) -> None:
    """create_repo works twice with exist_ok; the 409 is JSON with the url; main exists at once."""
    api = _writer(hub, hub_tokens)
    first = api.create_repo("tester/pub-GGUF", exist_ok=True)
    second = api.create_repo("tester/pub-GGUF", exist_ok=True)
    assert first == second == f"{hub.endpoint}/tester/pub-GGUF"
    conflict = _post_json(hub, hub_tokens.writer, "/api/repos/create", {"name": "pub-GGUF"})
    assert conflict.status == 409
    assert json.loads(conflict.body)["url"] == f"{hub.endpoint}/tester/pub-GGUF"
    info = api.model_info("tester/pub-GGUF", files_metadata=True)
    assert info.sha is not None
    assert [s.rfilename for s in info.siblings or []] == [".gitattributes"]
    with pytest.raises(HfHubHTTPError) as caught:
        api.create_repo("tester/pub-GGUF")
    assert caught.value.response.status_code == 409


def test_create_repo_needs_a_write_token_for_the_namespace(
    hub: ServerHandle, hub_tokens: HubTokens
) -> None:
    """Anonymous callers get 401; read tokens and foreign namespaces get 403."""
    with pytest.raises(HfHubHTTPError) as anonymous:
        HfApi(endpoint=hub.endpoint).create_repo("tester/x")
    assert anonymous.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as reader:
        HfApi(endpoint=hub.endpoint, token=hub_tokens.reader).create_repo("reader/x")
    assert reader.value.response.status_code == 403
    with pytest.raises(HfHubHTTPError) as foreign:
        _writer(hub, hub_tokens).create_repo("someone-else/x")
    assert foreign.value.response.status_code == 403
    assert _writer(hub, hub_tokens).create_repo("org/x") == f"{hub.endpoint}/org/x"
    assert hub.repos.repo_ids() == ["org/x"]


def test_upload_file_then_download(
    hub: ServerHandle, hub_tokens: HubTokens, tmp_path: Path, hf_cache: Path
) -> None:
    """upload_file commits bytes that download back unchanged, LFS by extension."""
    api = _writer(hub, hub_tokens)
    api.create_repo("tester/single")
    local = tmp_path / "w.safetensors"
    local.write_bytes(WEIGHTS)
    info = api.upload_file(
        path_or_fileobj=local, path_in_repo="w.safetensors", repo_id="tester/single"
    )
    assert info.oid == hub.repos.head("tester/single").id
    assert "/commit/" in info.commit_url
    path = api.hf_hub_download("tester/single", "w.safetensors", cache_dir=hf_cache)
    assert Path(path).read_bytes() == WEIGHTS
    sibling = next(
        s
        for s in api.model_info("tester/single", files_metadata=True).siblings or []
        if s.rfilename == "w.safetensors"
    )
    assert sibling.lfs is not None
    assert sibling.lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    stored = hub.repos.counters.events("lfs.stored", "tester/single")
    assert [e.detail["oid"] for e in stored] == [hashlib.sha256(WEIGHTS).hexdigest()]


def _make_folder(base: Path) -> Path:
    folder = base / "upload"
    (folder / "nested").mkdir(parents=True)
    (folder / "model-Q4_K_M.gguf").write_bytes(WEIGHTS)
    (folder / "blob.dat").write_bytes(b"binary\0content")
    (folder / "nested" / "config.json").write_text('{"a": 1}\n')
    (folder / "README.md").write_text("---\nlicense: apache-2.0\n---\n# pub\n")
    return folder


def test_upload_folder_round_trip(
    hub: ServerHandle, hub_tokens: HubTokens, tmp_path: Path, hf_cache: Path
) -> None:
    """upload_folder stores LFS and regular files in one commit; snapshot_download returns them."""
    api = _writer(hub, hub_tokens)
    api.create_repo("tester/folder")
    source = _make_folder(tmp_path)
    commit = api.upload_folder(repo_id="tester/folder", folder_path=source, commit_message="add")
    info = api.model_info("tester/folder", files_metadata=True)
    assert info.sha == commit.oid
    lfs = {s.rfilename for s in info.siblings or [] if s.lfs is not None}
    assert lfs == {"model-Q4_K_M.gguf", "blob.dat"}
    assert info.card_data is not None
    assert info.card_data.license == "apache-2.0"
    folder = Path(snapshot_download("tester/folder", endpoint=hub.endpoint, cache_dir=hf_cache))
    for path in source.rglob("*"):
        if path.is_file():
            assert (folder / path.relative_to(source)).read_bytes() == path.read_bytes()
    assert (hub.repos.repo_folder("tester/folder") / "nested" / "config.json").is_file()


def test_create_commit_with_deletes(
    hub: ServerHandle, hub_tokens: HubTokens, tmp_path: Path
) -> None:
    """Deleting a file and a folder removes them; deleting a missing file is EntryNotFound."""
    api = _writer(hub, hub_tokens)
    api.create_repo("tester/del")
    api.upload_folder(repo_id="tester/del", folder_path=_make_folder(tmp_path))
    api.create_commit(
        "tester/del",
        [
            CommitOperationDelete("blob.dat"),
            CommitOperationDelete("nested/", is_folder=True),
            CommitOperationAdd("new.txt", b"new"),
        ],
        commit_message="prune",
    )
    files = sorted(api.list_repo_files("tester/del"))
    assert files == [".gitattributes", "README.md", "model-Q4_K_M.gguf", "new.txt"]
    assert not (hub.repos.repo_folder("tester/del") / "nested").exists()
    assert [c.title for c in api.list_repo_commits("tester/del")] == [
        "prune",
        "Upload folder using huggingface_hub",
        "initial commit",
    ]
    with pytest.raises(EntryNotFoundError):
        api.delete_file("missing.txt", "tester/del")


def test_identical_content_makes_no_new_commit(
    hub: ServerHandle, hub_tokens: HubTokens, tmp_path: Path
) -> None:
    """Re-uploading the same folder and posting a no-op commit leave the head and history alone."""
    api = _writer(hub, hub_tokens)
    api.create_repo("tester/same")
    source = _make_folder(tmp_path)
    first = api.upload_folder(repo_id="tester/same", folder_path=source)
    assert hub.repos.counters.requests("lfs_upload") == 2
    second = api.upload_folder(repo_id="tester/same", folder_path=source)
    assert second.oid == first.oid
    assert hub.repos.counters.requests("commit") == 1
    assert hub.repos.counters.requests("lfs_upload") == 2
    body = _ndjson(
        {"key": "header", "value": {"summary": "again", "description": ""}},
        {
            "key": "file",
            "value": {
                "path": "README.md",
                "content": base64.b64encode((source / "README.md").read_bytes()).decode(),
                "encoding": "base64",
            },
        },
        {
            "key": "lfsFile",
            "value": {
                "path": "model-Q4_K_M.gguf",
                "algo": "sha256",
                "oid": hashlib.sha256(WEIGHTS).hexdigest(),
                "size": len(WEIGHTS),
            },
        },
    )
    answer = http_request(
        hub.endpoint,
        "POST",
        "/api/models/tester/same/commit/main",
        headers={
            "Authorization": f"Bearer {hub_tokens.writer}",
            "Content-Type": "application/x-ndjson",
        },
        body=body,
    )
    assert answer.status == 200
    assert json.loads(answer.body)["commitOid"] == first.oid
    assert hub.repos.head("tester/same").id == first.oid
    assert len(hub.repos.list_commits("tester/same")) == 2
    noops = hub.repos.counters.events("commit.noop", "tester/same")
    assert [e.detail["commit"] for e in noops] == [first.oid]


def test_stale_parent_commit_is_refused(hub: ServerHandle, hub_tokens: HubTokens) -> None:
    """A commit whose parentCommit is no longer the head is a 412 and changes nothing."""
    api = _writer(hub, hub_tokens)
    api.create_repo("tester/race")
    base = hub.repos.head("tester/race").id
    api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id="tester/race")
    head = hub.repos.head("tester/race").id
    with pytest.raises(HfHubHTTPError) as caught:
        api.create_commit(
            "tester/race",
            [CommitOperationAdd("b.txt", b"two")],
            commit_message="late",
            parent_commit=base,
        )
    assert caught.value.response.status_code == 412
    assert hub.repos.head("tester/race").id == head


def test_preupload_reports_modes_and_existing_oids(
    hub: ServerHandle, hub_repo: HubRepoFactory, hub_tokens: HubTokens
) -> None:
    """preupload picks lfs/regular per file and returns the oid of the file already there."""
    hub_repo("org/pre", {"w.gguf": WEIGHTS, "README.md": "# hi\n"})
    sample = base64.b64encode(b"# hi\n").decode()
    answer = _post_json(
        hub,
        hub_tokens.writer,
        "/api/models/org/pre/preupload/main",
        {
            "files": [
                {"path": "w.gguf", "sample": "", "size": len(WEIGHTS)},
                {"path": "README.md", "sample": sample, "size": 5},
                {"path": "new.bin", "sample": "", "size": 3},
            ]
        },
    )
    files = {f["path"]: f for f in json.loads(answer.body)["files"]}
    assert files["w.gguf"]["uploadMode"] == "lfs"
    assert files["w.gguf"]["oid"] == hashlib.sha256(WEIGHTS).hexdigest()
    assert files["README.md"]["uploadMode"] == "regular"
    assert files["README.md"]["oid"] == hub.repos.head("org/pre").files["README.md"].git_sha1
    assert files["new.bin"]["oid"] is None
    assert all(f["shouldIgnore"] is False for f in files.values())


def test_put_with_wrong_bytes_is_refused(hub: ServerHandle, hub_tokens: HubTokens) -> None:
    """The LFS PUT stores nothing unless size and SHA-256 match; commits need stored objects."""
    _writer(hub, hub_tokens).create_repo("tester/lfs")
    oid = hashlib.sha256(WEIGHTS).hexdigest()
    batch = _post_json(
        hub,
        hub_tokens.writer,
        "/tester/lfs.git/info/lfs/objects/batch",
        {"operation": "upload", "objects": [{"oid": oid, "size": len(WEIGHTS)}]},
    )
    actions = json.loads(batch.body)["objects"][0]["actions"]
    upload = urlsplit(actions["upload"]["href"])
    base = f"{upload.scheme}://{upload.netloc}"
    target = f"{upload.path}?{upload.query}"
    wrong = http_request(base, "PUT", target, body=os.urandom(len(WEIGHTS)))
    assert wrong.status == 400
    short = http_request(base, "PUT", target, body=WEIGHTS[:-1])
    assert short.status == 400
    assert not hub.repos.blobs.has(oid)
    assert [e.name for e in hub.repos.counters.events()].count("lfs.rejected") == 2
    verify = _post_json(
        hub, hub_tokens.writer, urlsplit(actions["verify"]["href"]).path, {"oid": oid, "size": 1}
    )
    assert verify.status == 404
    lfs_line = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid}}
    header = {"key": "header", "value": {"summary": "add"}}
    auth = {"Authorization": f"Bearer {hub_tokens.writer}"}
    refused = http_request(
        hub.endpoint,
        "POST",
        "/api/models/tester/lfs/commit/main",
        headers=auth,
        body=_ndjson(header, lfs_line),
    )
    assert refused.status == 400
    assert http_request(base, "PUT", target, body=WEIGHTS).status == 200
    assert hub.repos.blobs.has(oid)
    accepted = http_request(
        hub.endpoint,
        "POST",
        "/api/models/tester/lfs/commit/main",
        headers=auth,
        body=_ndjson(header, lfs_line),
    )
    assert accepted.status == 200
    assert hub.repos.head("tester/lfs").files["w.bin"].lfs is True
    again = _post_json(
        hub,
        hub_tokens.writer,
        "/tester/lfs.git/info/lfs/objects/batch",
        {"operation": "upload", "objects": [{"oid": oid, "size": len(WEIGHTS)}]},
    )
    assert "actions" not in json.loads(again.body)["objects"][0]


def test_restart_keeps_repositories_and_commit_ids(
    hub_factory: HubFactory, hub_tokens: HubTokens, tmp_path: Path, hf_cache: Path
) -> None:
    """A restarted server serves the uploaded repos at the same commits; imports are stable."""
    first = hub_factory()
    api = HfApi(endpoint=first.endpoint, token=hub_tokens.writer)
    api.create_repo("tester/kept", private=True)
    commit = api.upload_folder(repo_id="tester/kept", folder_path=_make_folder(tmp_path)).oid
    first.close()
    second = hub_factory()
    api = HfApi(endpoint=second.endpoint, token=hub_tokens.writer)
    info = api.model_info("tester/kept")
    assert info.sha == commit
    assert info.private is True
    assert len(api.list_repo_commits("tester/kept")) == 2
    path = api.hf_hub_download("tester/kept", "model-Q4_K_M.gguf", cache_dir=hf_cache)
    assert Path(path).read_bytes() == WEIGHTS
    assert second.repos.counters.events("commit.created") == []
    other_root = tmp_path / "other-root"
    for root in (second.repos.root, other_root):
        folder = root / "org" / "copy"
        folder.mkdir(parents=True)
        (folder / "a.txt").write_text("same text")
        (folder / "b.gguf").write_bytes(b"same weights")
    third = hub_factory(root=other_root)  # imports the folders under its root when it starts
    assert second.repos.import_directory("org/copy").id == third.repos.head("org/copy").id
    assert third.repos.repo_ids() == ["org/copy"]


def test_update_repo_settings(
    hub: ServerHandle, hub_repo: HubRepoFactory, hub_tokens: HubTokens
) -> None:
    """update_repo_settings sets gating and visibility; readers cannot change them."""
    hub_repo("org/settings", {"a.txt": "a"})
    _writer(hub, hub_tokens).update_repo_settings("org/settings", gated="manual", private=True)
    settings = hub.repos.get("org/settings").settings
    assert (settings.gated, settings.private) == ("manual", True)
    hub_repo("tester/mine", {"a.txt": "a"})
    with pytest.raises(HfHubHTTPError) as caught:
        HfApi(endpoint=hub.endpoint, token=hub_tokens.reader).update_repo_settings(
            "tester/mine", gated="auto"
        )
    assert caught.value.response.status_code == 403
    assert hub.repos.get("tester/mine").settings.gated is False


def test_uploads_reach_the_folder_so_rescans_change_nothing(
    hub: ServerHandle, hub_repo: HubRepoFactory, hub_tokens: HubTokens
) -> None:
    """A commit to main is written back to the repository folder; a rescan then is a no-op."""
    ref = hub_repo("org/sync", {"a.txt": "a"})
    api = _writer(hub, hub_tokens)
    api.upload_file(path_or_fileobj=b"b", path_in_repo="dir/b.txt", repo_id="org/sync")
    api.delete_file("a.txt", "org/sync")
    folder = hub.repos.repo_folder("org/sync")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == [
        "dir",
        "dir/b.txt",
    ]
    head = hub.repos.head("org/sync").id
    assert head != ref.commit
    assert hub.repos.rescan()["org/sync"].id == head
    assert hub.repos.counters.events("commit.noop", "org/sync") != []


def test_large_regular_file_travels_inside_the_commit(
    hub: ServerHandle, hub_tokens: HubTokens, hf_cache: Path
) -> None:
    """A multi-MB text file goes base64 in the NDJSON commit and comes back byte for byte."""
    text = b"0123456789abcdef\n" * 200_000
    api = _writer(hub, hub_tokens)
    api.create_repo("tester/text")
    api.create_commit(
        "tester/text", [CommitOperationAdd("corpus.txt", text)], commit_message="corpus"
    )
    entry = hub.repos.head("tester/text").files["corpus.txt"]
    assert (entry.size, entry.lfs) == (len(text), False)
    assert hub.repos.counters.requests("lfs_upload") == 0
    path = api.hf_hub_download("tester/text", "corpus.txt", cache_dir=hf_cache)
    assert Path(path).read_bytes() == text
