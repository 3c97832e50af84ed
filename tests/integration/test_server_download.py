"""Downloads from the Hub-compatible server: resolve, Range, the CDN origin, errors, safety."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import structlog
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from modelsync.server import gitobj
from modelsync.server.runner import ServerHandle
from tests.fixtures.hub import CDN_HOST, HubRepoFactory, HubTokens, http_request

BIG = os.urandom(3 * 1024 * 1024 + 123)
TEXT = b"a text file that must never be served gzipped\n" * 40


@pytest.fixture
def files(hub_repo: HubRepoFactory) -> str:
    """`org/files`: a 3 MiB LFS file, a regular text file and a nested text file."""
    hub_repo(
        "org/files",
        {"weights/big.gguf": BIG, "notes.txt": TEXT, "sub/dir/config.json": b'{"a": 1}'},
    )
    return "org/files"


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_download_by_branch_tag_and_commit(
    hub: ServerHandle, hub_repo: HubRepoFactory, hf_cache: Path
) -> None:
    """hf_hub_download gets each revision's own bytes by branch, tag and commit id."""
    old = hub_repo("org/versions", {"data.txt": "version one"})
    hub.repos.create_tag("org/versions", "v1", old.commit)
    new = hub_repo("org/versions", {"data.txt": "version two"})

    def get(revision: str) -> str:
        path = hf_hub_download(
            "org/versions", "data.txt", revision=revision, endpoint=hub.endpoint, cache_dir=hf_cache
        )
        return Path(path).read_text()

    assert get("main") == "version two"
    assert get("v1") == "version one"
    assert get(old.commit) == "version one"
    assert get(new.commit) == "version two"


def test_regular_file_headers(hub: ServerHandle, files: str) -> None:
    """A regular file answers 200 with commit, git-SHA-1 ETag, true length and no encoding."""
    commit = hub.repos.head(files).id
    answer = http_request(
        hub.endpoint, "GET", f"/{files}/resolve/main/notes.txt", headers={"Accept-Encoding": "gzip"}
    )
    assert answer.status == 200
    assert answer.body == TEXT
    assert answer.headers["x-repo-commit"] == commit
    assert answer.headers["x-linked-etag"] == f'"{gitobj.git_blob_oid(TEXT)}"'
    assert answer.headers["etag"] == answer.headers["x-linked-etag"]
    assert answer.headers["x-linked-size"] == str(len(TEXT))
    assert answer.headers["content-length"] == str(len(TEXT))
    assert answer.headers["accept-ranges"] == "bytes"
    assert "content-encoding" not in answer.headers
    assert not any(name.startswith("x-xet") for name in answer.headers)
    head = http_request(hub.endpoint, "HEAD", f"/{files}/resolve/{commit}/notes.txt")
    assert head.status == 200
    assert head.headers["content-length"] == str(len(TEXT))
    assert head.body == b""


def test_range_requests_answer_206_and_416(hub: ServerHandle, files: str) -> None:
    """One satisfiable range is a 206 with Content-Range; a range past the end is a 416."""
    path = f"/{files}/resolve/main/notes.txt"
    partial = http_request(hub.endpoint, "GET", path, headers={"Range": "bytes=10-19"})
    assert partial.status == 206
    assert partial.body == TEXT[10:20]
    assert partial.headers["content-range"] == f"bytes 10-19/{len(TEXT)}"
    assert partial.headers["content-length"] == "10"
    suffix = http_request(hub.endpoint, "GET", path, headers={"Range": "bytes=-5"})
    assert suffix.body == TEXT[-5:]
    beyond = http_request(hub.endpoint, "GET", path, headers={"Range": f"bytes={len(TEXT)}-"})
    assert beyond.status == 416
    assert beyond.headers["content-range"] == f"bytes */{len(TEXT)}"
    garbage = http_request(hub.endpoint, "GET", path, headers={"Range": "bytes=oops"})
    assert garbage.status == 200
    assert garbage.body == TEXT
    assert hub.repos.counters.bytes_sent(files, "notes.txt") == 10 + 5 + len(TEXT)


def test_lfs_file_redirects_to_the_cdn_without_authorization(
    hub: ServerHandle, files: str, hub_tokens: HubTokens, hf_cache: Path
) -> None:
    """LFS files 302 to a signed CDN URL carrying the X- headers; the CDN never sees the token."""
    commit = hub.repos.head(files).id
    auth = {"Authorization": f"Bearer {hub_tokens.reader}"}
    head = http_request(
        hub.endpoint, "HEAD", f"/{files}/resolve/main/weights/big.gguf", headers=auth
    )
    assert head.status == 302
    location = urlsplit(head.headers["location"])
    assert location.hostname == CDN_HOST
    assert head.headers["x-repo-commit"] == commit
    assert head.headers["x-linked-etag"] == f'"{hashlib.sha256(BIG).hexdigest()}"'
    assert head.headers["x-linked-size"] == str(len(BIG))
    path = hf_hub_download(
        files,
        "weights/big.gguf",
        endpoint=hub.endpoint,
        token=hub_tokens.reader,
        cache_dir=hf_cache,
    )
    assert _sha256(path) == hashlib.sha256(BIG).hexdigest()
    cdn_requests = hub.repos.counters.request_log("cdn_file")
    assert [r.method for r in cdn_requests] == ["GET"]
    assert all("authorization" not in r.header_names for r in cdn_requests)
    assert all("authorization" in r.header_names for r in hub.repos.counters.request_log("resolve"))
    assert hub.repos.counters.bytes_sent(files, "weights/big.gguf") == len(BIG)


def test_cdn_honours_range_and_refuses_bad_signatures(hub: ServerHandle, files: str) -> None:
    """The CDN serves ranges of a validly signed URL and 403s a tampered or unsigned one."""
    head = http_request(hub.endpoint, "HEAD", f"/{files}/resolve/main/weights/big.gguf")
    assert hub.cdn_endpoint is not None
    location = urlsplit(head.headers["location"])
    target = f"{location.path}?{location.query}"
    ranged = http_request(hub.cdn_endpoint, "GET", target, headers={"Range": "bytes=100-199"})
    assert ranged.status == 206
    assert ranged.body == BIG[100:200]
    assert ranged.headers["x-repo-commit"] == head.headers["x-repo-commit"]
    query = dict(parse_qsl(location.query))
    for changed in (
        {**query, "sig": "0" * 64},
        {**query, "exp": str(int(query["exp"]) + 10)},
        {k: v for k, v in query.items() if k != "sig"},
    ):
        answer = http_request(hub.cdn_endpoint, "GET", f"{location.path}?{urlencode(changed)}")
        assert answer.status == 403
        assert BIG[:64] not in answer.body


def test_snapshot_download_with_allow_patterns(
    hub: ServerHandle, files: str, hf_cache: Path
) -> None:
    """snapshot_download fetches only the files matching allow_patterns, with their bytes."""
    folder = Path(
        snapshot_download(
            files, allow_patterns=["*.json", "*.txt"], endpoint=hub.endpoint, cache_dir=hf_cache
        )
    )
    got = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert got == ["notes.txt", "sub/dir/config.json"]
    assert (folder / "notes.txt").read_bytes() == TEXT
    assert hub.repos.counters.requests("cdn_file") == 0


def test_missing_repo_file_and_revision_map_to_client_errors(
    hub: ServerHandle, files: str, hf_cache: Path
) -> None:
    """404s carry the codes the client turns into its not-found errors for repo, file, revision."""
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/nope", "a.txt", endpoint=hub.endpoint, cache_dir=hf_cache)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(files, "missing.txt", endpoint=hub.endpoint, cache_dir=hf_cache)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            files, "notes.txt", revision="nope", endpoint=hub.endpoint, cache_dir=hf_cache
        )
    answer = http_request(hub.endpoint, "HEAD", f"/{files}/resolve/main/missing.txt")
    assert answer.status == 404
    assert answer.headers["x-error-code"] == "EntryNotFound"
    assert answer.headers["x-repo-commit"] == hub.repos.head(files).id
    folder = http_request(hub.endpoint, "GET", f"/{files}/resolve/main/sub/dir")
    assert folder.headers["x-error-code"] == "EntryNotFound"


def test_gated_repository_needs_a_token(
    hub: ServerHandle, hub_repo: HubRepoFactory, hub_tokens: HubTokens, hf_cache: Path
) -> None:
    """Gated files need a valid token (auto) or an approved user (manual); metadata stays public."""
    hub_repo("org/gated", {"w.txt": "gated bytes"}, gated="auto")
    with pytest.raises(GatedRepoError):
        hf_hub_download("org/gated", "w.txt", endpoint=hub.endpoint, cache_dir=hf_cache)
    path = hf_hub_download(
        "org/gated", "w.txt", endpoint=hub.endpoint, token=hub_tokens.reader, cache_dir=hf_cache
    )
    assert Path(path).read_text() == "gated bytes"
    assert HfApi(endpoint=hub.endpoint).model_info("org/gated").gated == "auto"
    hub.repos.set_settings("org/gated", gated="manual")
    denied = http_request(
        hub.endpoint,
        "GET",
        "/org/gated/resolve/main/w.txt",
        headers={"Authorization": f"Bearer {hub_tokens.reader}"},
    )
    assert denied.status == 403
    assert denied.headers["x-error-code"] == "GatedRepo"
    anonymous = http_request(hub.endpoint, "GET", "/org/gated/resolve/main/w.txt")
    assert anonymous.status == 401
    assert anonymous.headers["x-error-code"] == "GatedRepo"
    with pytest.raises(GatedRepoError):
        HfApi(endpoint=hub.endpoint, token=hub_tokens.reader).auth_check("org/gated")
    HfApi(endpoint=hub.endpoint, token=hub_tokens.writer).auth_check("org/gated")
    hub.repos.set_settings("org/gated", approved_users=["reader"])
    HfApi(endpoint=hub.endpoint, token=hub_tokens.reader).auth_check("org/gated")


@pytest.mark.parametrize(
    "path",
    [
        "/org/files/resolve/main/../../secret.txt",
        "/org/files/resolve/main/%2e%2e/%2e%2e/secret.txt",
        "/org/files/resolve/main/sub/%2e%2e%2F%2e%2e%2F%2e%2e%2Fsecret.txt",
        "/org/files/resolve/main/..%2F..%2Fsecret.txt",
        "/org/files/resolve/main//etc/passwd",
        "/org/files/resolve/main/%2Fetc%2Fpasswd",
        "/org/files/resolve/main/notes.txt%00.gguf",
        "/org/files/resolve/main/.hub/state",
        "/org/files/resolve/..%2F..%2F/secret.txt",
        "/org/..%2F..%2F/resolve/main/secret.txt",
        "/org/files/resolve/main/sub\\..\\..\\secret.txt",
        "/api/models/org/files/tree/main/%2e%2e%2F%2e%2e",
        "/api/models/org/files/tree/main/..%2F..%2F.hub",
    ],
)
def test_path_traversal_is_never_served(hub: ServerHandle, files: str, path: str) -> None:
    """Encoded or plain `..`, absolute paths and NUL bytes get a 4xx and never a byte outside."""
    (hub.repos.root / "secret.txt").write_text("TOP-SECRET")
    (hub.repos.root / "org" / "secret.txt").write_text("TOP-SECRET")
    answer = http_request(hub.endpoint, "GET", path)
    assert 400 <= answer.status < 500
    assert b"TOP-SECRET" not in answer.body
    assert b"root:" not in answer.body


def test_import_skips_symlinks_out_of_the_repository(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A symlink in a repository folder is not imported, so its target is never served."""
    outside = tmp_path / "outside.txt"
    outside.write_text("OUTSIDE")
    hub_repo("org/links", {"real.txt": "real"})
    (hub.repos.repo_folder("org/links") / "link.txt").symlink_to(outside)
    commit = hub.repos.import_directory("org/links")
    assert sorted(commit.files) == ["real.txt"]
    answer = http_request(hub.endpoint, "GET", "/org/links/resolve/main/link.txt")
    assert answer.status == 404
    assert b"OUTSIDE" not in answer.body


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("GET", "/api/models?limit=abc", {}),
        ("GET", "/api/models?cursor=zz", {}),
        ("GET", "/api/models?num_parameters=min:lots", {}),
        ("GET", "/api/models/org/files/tree/main/%00", {}),
        ("GET", "/api/models/org/files/revision/%00", {}),
        ("GET", "/api/models/o..x/files", {}),
        ("GET", "/org/files/resolve/main/notes.txt", {"Range": "bytes=999999999999999999999-"}),
        ("GET", "/org/files/resolve/main/notes.txt", {"Range": "bytes=0-1,3-4"}),
        ("GET", "/org/files/resolve/main/notes.txt", {"Authorization": "Basic Zm9vOmJhcg=="}),
        ("POST", "/api/models/org/files/paths-info/main", {"Content-Type": "application/json"}),
        ("POST", "/api/repos/create", {"Content-Type": "application/json"}),
    ],
)
def test_malformed_requests_never_answer_500(
    hub: ServerHandle, files: str, method: str, path: str, headers: dict[str, str]
) -> None:
    """Odd queries, paths, ranges, credentials and bodies get a deliberate answer, not a crash."""
    answer = http_request(hub.endpoint, method, path, headers=headers, body=b"{not json")
    assert answer.status < 500
    if path.startswith("/api/") and answer.status >= 400:
        assert "error" in json.loads(answer.body)


@contextlib.contextmanager
def _all_levels() -> Iterator[None]:
    """Let debug events through whatever level an earlier test configured, then restore it."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    try:
        yield
    finally:
        structlog.configure(**saved)


def test_logs_never_contain_tokens_or_signatures(
    hub: ServerHandle, files: str, hub_tokens: HubTokens
) -> None:
    """Request logs carry paths and statuses, never tokens or signed query strings."""
    with _all_levels(), structlog.testing.capture_logs() as logs:
        head = http_request(
            hub.endpoint,
            "HEAD",
            f"/{files}/resolve/main/weights/big.gguf",
            headers={"Authorization": f"Bearer {hub_tokens.reader}"},
        )
        assert hub.cdn_endpoint is not None
        location = urlsplit(head.headers["location"])
        http_request(hub.cdn_endpoint, "HEAD", f"{location.path}?{location.query}")
        http_request(
            hub.endpoint, "GET", "/api/whoami-v2", headers={"Authorization": "Bearer hf_x"}
        )
    text = repr(logs)
    assert "request" in text
    assert hub_tokens.reader not in text
    assert "hf_x" not in text
    assert dict(parse_qsl(location.query))["sig"] not in text


def test_names_with_spaces_and_unicode_survive_the_cdn(
    hub: ServerHandle, hub_repo: HubRepoFactory, hf_cache: Path
) -> None:
    """Paths with spaces, `+` and non-ASCII letters resolve, redirect and download intact."""
    name = "dir/my model+ü 1.gguf"
    hub_repo("org/unicode", {name: BIG[:4096], "notes ü.txt": "ü"})
    path = hf_hub_download("org/unicode", name, endpoint=hub.endpoint, cache_dir=hf_cache)
    assert Path(path).read_bytes() == BIG[:4096]
    text = hf_hub_download("org/unicode", "notes ü.txt", endpoint=hub.endpoint, cache_dir=hf_cache)
    assert Path(text).read_text(encoding="utf-8") == "ü"
    assert hub.repos.counters.bytes_sent("org/unicode", name) == 4096
