"""The Hub registry client over real HTTP: the project's server, huggingface_hub as the judge,
and pytest-httpserver for exact faults (garbage JSON, 429 with Retry-After, 5xx, hostile paths)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from huggingface_hub import HfApi, hf_hub_download
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from modelsync.errors import AuthError, ExitCode, ModelsyncError, RemoteError
from modelsync.gguf.header import GgufHeader
from modelsync.lock.driver import read_gguf_header
from modelsync.lock.steps import shape_of
from modelsync.net.retry import RETRYABLE_STATUS, RetryPolicy, retry_after_seconds
from modelsync.net.session import Credentials, create_session
from modelsync.registry.errors import (
    RegistryProtocolError,
    RepoNotFoundError,
    RevisionNotFoundError,
    UnsafePathError,
)
from modelsync.registry.hf import HubRegistry
from modelsync.registry.http import Http, Rules
from modelsync.registry.model import RepoSnapshot
from modelsync.registry.url import UrlFiles
from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import make_gguf_repo, write_gguf
from tests.fixtures.hub import HubRepoFactory, HubTokens

T = TypeVar("T")
FAST = RetryPolicy(attempts=3, base_delay=0.01, jitter=0.0)
COMMIT = "0123456789abcdef0123456789abcdef01234567"
SHA = "ab" * 32


def run_with(
    endpoint: str,
    action: Callable[[HubRegistry], Awaitable[T]],
    *,
    token: str | None = None,
    sleeps: list[float] | None = None,
) -> T:
    """Run `action` with a HubRegistry on `endpoint`, recording (and skipping) backoff sleeps."""

    async def sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    async def main() -> T:
        async with create_session() as session:
            credentials = Credentials({endpoint: token} if token else {})
            rules = Rules(FAST, RETRYABLE_STATUS, retry_after_seconds, sleep=sleep)
            registry = HubRegistry(
                "hf", endpoint, Http(session, credentials, rules), "HF_TOKEN", bool(token)
            )
            return await action(registry)

    return asyncio.run(main())


def snapshot(endpoint: str, repo: str, revision: str = "main", **kw: object) -> RepoSnapshot:
    return run_with(endpoint, lambda r: r.snapshot(repo, revision), **kw)  # type: ignore[arg-type]


def info_json(files: list[dict[str, object]], sha: str = COMMIT) -> dict[str, object]:
    return {"id": "org/x", "sha": sha, "siblings": files}


@pytest.fixture
def tiny_repo(hub_repo: HubRepoFactory, tmp_path: Path) -> tuple[str, str, Path]:
    """A typical GGUF repo on the local hub: (repo id, commit, its source folder)."""
    folder = tmp_path / "src"
    make_gguf_repo(folder, "Tiny-Llama")
    ref = hub_repo("org/Tiny-Llama-GGUF", {p.name: p for p in folder.iterdir()})
    return ref.repo_id, ref.commit, folder


def test_snapshot_agrees_with_huggingface_hub(
    hub: ServerHandle, tiny_repo: tuple[str, str, Path], hf_cache: Path
) -> None:
    """One listing request gives the commit, sizes and LFS sha256 that huggingface_hub reports."""
    repo, commit, _ = tiny_repo
    found = snapshot(hub.endpoint, repo)
    assert found.commit == commit
    info = HfApi(endpoint=hub.endpoint).model_info(repo, files_metadata=True)
    assert info.sha == commit
    theirs = {s.rfilename: (s.size, s.lfs.sha256 if s.lfs else None) for s in info.siblings or []}
    ours = {f.path: (f.size, f.sha256) for f in found.files}
    assert ours == theirs
    assert any(f.sha256 is None for f in found.files)  # small text files are not in LFS
    assert found.date is not None
    assert found.date == info.last_modified  # the commit's date, for `outdated`


@pytest.mark.parametrize("value", ["yesterday", 12, "2026-11-30T10:00:00", None])
def test_unreadable_commit_date_is_unknown_not_an_error(
    httpserver: HTTPServer, value: object
) -> None:
    """A `lastModified` that is not an ISO date with a zone leaves the date unknown; the
    listing is still read (the date only informs `outdated`)."""
    body = {**info_json([{"rfilename": "a.bin", "size": 1}]), "lastModified": value}
    httpserver.expect_request("/api/models/org/x/revision/main").respond_with_json(body)
    found = snapshot(httpserver.url_for("").rstrip("/"), "org/x")
    assert (found.commit, found.date) == (COMMIT, None)


def test_non_lfs_files_are_hashed_like_the_downloaded_bytes(
    hub: ServerHandle, tiny_repo: tuple[str, str, Path], hf_cache: Path
) -> None:
    """A file without an LFS sha256 is fetched and hashed: the digest of the official download."""
    repo, commit, _ = tiny_repo
    found = snapshot(hub.endpoint, repo)
    readme = found.file("README.md")
    assert readme is not None
    assert readme.sha256 is None
    digest = run_with(hub.endpoint, lambda r: r.hash_file(repo, commit, readme))
    path = hf_hub_download(
        repo, "README.md", revision=commit, endpoint=hub.endpoint, cache_dir=hf_cache
    )
    assert digest == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_range_read_follows_the_cdn_redirect(
    hub: ServerHandle, tiny_repo: tuple[str, str, Path]
) -> None:
    """Header bytes come from a ranged GET, through the Hub's redirect to its CDN origin."""
    repo, commit, folder = tiny_repo
    name = "Tiny-Llama-Q4_K_M.gguf"
    data = run_with(hub.endpoint, lambda r: r.read_range(repo, commit, name, 0, 99))
    assert data == (folder / name).read_bytes()[:100]
    more = run_with(hub.endpoint, lambda r: r.read_range(repo, commit, name, 100, 199))
    assert more == (folder / name).read_bytes()[100:200]


def test_missing_repo_and_revision_are_bad_input(
    hub: ServerHandle, tiny_repo: tuple[str, str, Path]
) -> None:
    """A repository or revision that does not exist is exit 2, naming it and the fix."""
    with pytest.raises(RepoNotFoundError) as caught:
        snapshot(hub.endpoint, "org/nope")
    assert caught.value.exit_code == ExitCode.USAGE
    assert caught.value.one_line().startswith(
        f"hf:org/nope does not exist (the registry at {hub.endpoint} answered 404)"
    )
    assert "if the repository is private, set HF_TOKEN" in caught.value.one_line()
    with pytest.raises(RevisionNotFoundError, match='has no revision "v9"'):
        snapshot(hub.endpoint, tiny_repo[0], "v9")


def test_unreachable_registry_is_remote_error() -> None:
    """A closed port is exit 5 after the retries, naming the URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RemoteError) as caught:
        snapshot(f"http://127.0.0.1:{port}", "org/x", sleeps=[])
    assert caught.value.exit_code == ExitCode.REMOTE
    assert f"cannot reach http://127.0.0.1:{port}/api/models/org/x/revision/main" in str(
        caught.value
    )
    assert "after 3 attempts" in str(caught.value)


def test_gated_repo_without_token_names_the_variable(
    hub: ServerHandle, hub_repo: HubRepoFactory, hub_tokens: HubTokens, tmp_path: Path
) -> None:
    """Reading a gated file anonymously is an AuthError naming the env var; a token works."""
    folder = tmp_path / "g"
    make_gguf_repo(folder, "Gated", quants=("Q4_K_M",))
    ref = hub_repo("org/Gated-GGUF", {p.name: p for p in folder.iterdir()}, gated="auto")
    name = "Gated-Q4_K_M.gguf"
    with pytest.raises(AuthError) as caught:
        run_with(hub.endpoint, lambda r: r.read_range(ref.repo_id, ref.commit, name, 0, 3))
    assert caught.value.exit_code == ExitCode.REMOTE
    assert caught.value.one_line() == (
        "hf:org/Gated-GGUF is gated: it needs an access token; "
        "set HF_TOKEN for an account that has accepted the repository's terms"
    )
    data = run_with(
        hub.endpoint,
        lambda r: r.read_range(ref.repo_id, ref.commit, name, 0, 3),
        token=hub_tokens.reader,
    )
    assert data == b"GGUF"


@pytest.mark.parametrize(
    "path", ["/etc/passwd", "../escape.gguf", "a/../../b", "dir\\x.gguf", "nul\x00.gguf", "a//b"]
)
def test_unsafe_paths_are_refused(httpserver: HTTPServer, path: str) -> None:
    """A listing with an absolute, '..', backslash or NUL path is refused, naming repo and path."""
    httpserver.expect_request("/api/models/org/x/revision/main").respond_with_json(
        info_json([{"rfilename": path, "size": 1}])
    )
    with pytest.raises(UnsafePathError) as caught:
        snapshot(httpserver.url_for("").rstrip("/"), "org/x")
    assert caught.value.exit_code == ExitCode.REMOTE
    assert caught.value.one_line().startswith(f"hf:org/x lists an unsafe file path {path!r}")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("<html>maintenance</html>", "Invalid JSON"),
        (json.dumps({"id": "org/x"}), "sha: Field required"),
        (json.dumps({"id": "org/x", "sha": "main"}), "'sha' is not a 40-hex commit id"),
        (json.dumps(info_json([{"rfilename": "a", "size": -1}])), "siblings.0.size"),
        (
            json.dumps(
                info_json([{"rfilename": "a", "size": 3, "lfs": {"sha256": "x", "size": 3}}])
            ),
            "bad LFS metadata for 'a'",
        ),
        (
            json.dumps(info_json([{"rfilename": "a", "size": 1}, {"rfilename": "a", "size": 1}])),
            "names a file twice",
        ),
    ],
)
def test_garbage_answers_are_protocol_errors(
    httpserver: HTTPServer, body: str, detail: str
) -> None:
    """Malformed JSON or impossible values are exit 5 naming the registry, URL and the problem."""
    httpserver.expect_request("/api/models/org/x/revision/main").respond_with_data(
        body, content_type="application/json"
    )
    with pytest.raises(RegistryProtocolError) as caught:
        snapshot(httpserver.url_for("").rstrip("/"), "org/x")
    line = caught.value.one_line()
    assert line.startswith(f"hf ({httpserver.url_for('').rstrip('/')}) answered ")
    assert "with an invalid listing" in line
    assert detail in line


def test_429_waits_as_long_as_retry_after_says(httpserver: HTTPServer) -> None:
    """A 429 with Retry-After is retried after at least that many seconds."""
    httpserver.expect_ordered_request("/api/models/org/x/revision/main").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "2"}
    )
    httpserver.expect_ordered_request("/api/models/org/x/revision/main").respond_with_json(
        info_json([{"rfilename": "m.gguf", "size": 3, "lfs": {"sha256": SHA, "size": 3}}])
    )
    sleeps: list[float] = []
    found = snapshot(httpserver.url_for("").rstrip("/"), "org/x", sleeps=sleeps)
    assert found.commit == COMMIT
    assert len(sleeps) == 1
    assert sleeps[0] >= 2.0


def test_5xx_is_retried_then_reported(httpserver: HTTPServer) -> None:
    """Server errors are retried with backoff; when they persist the error says how many tries."""
    url = "/api/models/org/x/revision/main"
    httpserver.expect_ordered_request(url).respond_with_data("oops", status=502)
    httpserver.expect_ordered_request(url).respond_with_json(info_json([]))
    sleeps: list[float] = []
    assert snapshot(httpserver.url_for("").rstrip("/"), "org/x", sleeps=sleeps).files == ()
    assert len(sleeps) == 1
    httpserver.clear()
    httpserver.expect_request(url).respond_with_data("down", status=503)
    with pytest.raises(RemoteError) as caught:
        snapshot(httpserver.url_for("").rstrip("/"), "org/x", sleeps=[])
    assert caught.value.exit_code == ExitCode.REMOTE
    assert "answered 503" in str(caught.value)
    assert "after 3 attempts" in str(caught.value)


def test_listing_without_sizes_falls_back_to_the_paged_tree(httpserver: HTTPServer) -> None:
    """When siblings lack sizes, the recursive tree is read page by page (absolute Link headers)."""
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/api/models/org/x/revision/main").respond_with_json(
        info_json([{"rfilename": "m.gguf"}, {"rfilename": "README.md"}])
    )
    tree = f"/api/models/org/x/tree/{COMMIT}"
    httpserver.expect_request(tree, query_string="recursive=true&expand=false").respond_with_json(
        [
            {"type": "directory", "path": "sub", "oid": "1" * 40},
            {"type": "file", "path": "m.gguf", "size": 3, "oid": "2" * 40,
             "lfs": {"oid": SHA, "size": 3, "pointerSize": 130}},
        ],
        headers={"Link": f'<{base}{tree}?cursor=2>; rel="next"'},
    )  # fmt: skip
    httpserver.expect_request(tree, query_string="cursor=2").respond_with_json(
        [{"type": "file", "path": "README.md", "size": 5, "oid": "3" * 40}]
    )
    found = snapshot(base, "org/x")
    assert [(f.path, f.size, f.sha256) for f in found.files] == [
        ("README.md", 5, None),
        ("m.gguf", 3, SHA),
    ]


def test_token_goes_only_to_the_registry_origin(httpserver: HTTPServer) -> None:
    """Authorization reaches the registry but not the host it redirects a download to."""
    seen: dict[str, str | None] = {}
    with HTTPServer(host="127.0.0.1", port=0) as cdn:

        def cdn_handler(request: Request) -> Response:
            seen["cdn"] = request.headers.get("Authorization")
            return Response(b"GGUFxxxx", status=206, headers={"Content-Range": "bytes 0-3/8"})

        def hub_handler(request: Request) -> Response:
            seen["hub"] = request.headers.get("Authorization")
            return Response(status=302, headers={"Location": cdn.url_for("/blob")})

        cdn.expect_request("/blob").respond_with_handler(cdn_handler)
        httpserver.expect_request(f"/org/x/resolve/{COMMIT}/m.gguf").respond_with_handler(
            hub_handler
        )
        data = run_with(
            httpserver.url_for("").rstrip("/"),
            lambda r: r.read_range("org/x", COMMIT, "m.gguf", 0, 3),
            token="hf_secret_token_value_123456",
        )
    assert data == b"GGUF"
    assert seen == {"hub": "Bearer hf_secret_token_value_123456", "cdn": None}


def test_range_answers_are_checked(httpserver: HTTPServer) -> None:
    """A 206 starting elsewhere than asked is refused; a 200 ignoring Range is cut to the window."""
    base = httpserver.url_for("").rstrip("/")
    path = f"/org/x/resolve/{COMMIT}/m.gguf"
    httpserver.expect_ordered_request(path).respond_with_data(
        b"XXXX", status=206, headers={"Content-Range": "bytes 4-7/100"}
    )
    with pytest.raises(RegistryProtocolError, match="Content-Range 'bytes 4-7/100'"):
        run_with(base, lambda r: r.read_range("org/x", COMMIT, "m.gguf", 0, 3))
    httpserver.expect_ordered_request(path).respond_with_data(b"GGUF" + b"\0" * 100_000)
    data = run_with(base, lambda r: r.read_range("org/x", COMMIT, "m.gguf", 0, 9))
    assert data == b"GGUF" + b"\0" * 6


def test_url_files_size_and_errors(httpserver: HTTPServer) -> None:
    """Plain files: size from HEAD, else from a one-byte range; a 404 is bad input (exit 2)."""

    async def size_of(url: str) -> int:
        async with create_session() as session:
            rules = Rules(FAST, RETRYABLE_STATUS, retry_after_seconds)
            files = UrlFiles("url", Http(session, Credentials({}), rules))
            return await files.size(url)

    httpserver.expect_request("/a.gguf", method="HEAD").respond_with_data(b"x" * 1234)
    assert asyncio.run(size_of(httpserver.url_for("/a.gguf"))) == 1234
    httpserver.expect_request("/b.gguf", method="HEAD").respond_with_data(b"", status=405)
    httpserver.expect_request("/b.gguf", method="GET").respond_with_data(
        b"G", status=206, headers={"Content-Range": "bytes 0-0/777"}
    )
    assert asyncio.run(size_of(httpserver.url_for("/b.gguf"))) == 777
    httpserver.expect_request("/missing.gguf").respond_with_data("gone", status=404)
    with pytest.raises(ModelsyncError) as caught:
        asyncio.run(size_of(httpserver.url_for("/missing.gguf")))
    assert caught.value.exit_code == ExitCode.USAGE
    assert "missing.gguf does not exist (404)" in str(caught.value)


def test_large_headers_are_read_in_growing_ranges(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """A header past the first 2 MiB window (a 300k-token vocabulary) is read in growing ranges."""
    path = write_gguf(
        tmp_path / "big-vocab-Q8_0.gguf", quant="Q8_0", n_vocab=300_000, n_embd=64, n_ff=64
    )
    ref = hub_repo("org/BigVocab-GGUF", {path.name: path})
    windows: list[tuple[int, int]] = []

    async def action(registry: HubRegistry) -> GgufHeader:
        async def read(start: int, end: int) -> bytes:
            windows.append((start, end))
            return await registry.read_range(ref.repo_id, ref.commit, path.name, start, end)

        return await read_gguf_header(read, "org/BigVocab-GGUF")

    header = run_with(hub.endpoint, action)
    shape = shape_of(header)
    assert shape is not None
    assert shape.n_vocab == 300_000
    assert header.header_size > 2 << 20
    assert windows[0] == (0, (2 << 20) - 1)
    assert len(windows) >= 2
    assert windows[-1][1] + 1 >= header.header_size
    assert sum(end - start + 1 for start, end in windows) < path.stat().st_size


def test_non_gguf_bytes_under_a_gguf_name_are_refused(httpserver: HTTPServer) -> None:
    """An LFS pointer served as a .gguf file is a protocol error naming the file."""
    httpserver.expect_request(f"/org/x/resolve/{COMMIT}/m.gguf").respond_with_data(
        b"version https://git-lfs.github.com/spec/v1\noid sha256:" + SHA.encode() + b"\nsize 9\n"
    )

    async def action(registry: HubRegistry) -> GgufHeader:
        return await read_gguf_header(
            lambda s, e: registry.read_range("org/x", COMMIT, "m.gguf", s, e), "hf:org/x: m.gguf"
        )

    with pytest.raises(RegistryProtocolError) as caught:
        run_with(httpserver.url_for("").rstrip("/"), action)
    assert caught.value.one_line().startswith("hf:org/x: m.gguf: not a readable GGUF file")
