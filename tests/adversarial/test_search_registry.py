"""`modelsync search` against registries that misbehave: rate limits, an unreachable host, a
listing that ignores `gated=false`, a `Link` that never ends, and bodies that are not a list."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import pytest
import structlog
from pytest_httpserver import HTTPServer

from modelsync.errors import ExitCode, ModelsyncError
from modelsync.net.retry import RetryPolicy
from modelsync.ops.search import SearchReport, SearchRequest, search
from modelsync.registry.hf_search import MAX_SEARCH_PAGES

FAST = RetryPolicy(attempts=3, base_delay=0.01, jitter=0.0)


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1."""
    return ("127.0.0.1", 0)


@pytest.fixture(autouse=True)
def no_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run where no models.toml is found: search needs none for the `hf` registry."""
    monkeypatch.chdir(tmp_path)


def item(repo: str, *, gated: bool | str = False, downloads: int = 1) -> dict[str, object]:
    """One `/api/models` item as the Hub sends it with our `expand[]` fields."""
    return {
        "id": repo,
        "downloads": downloads,
        "likes": 0,
        "createdAt": "2024-01-01T00:00:00.000Z",
        "lastModified": "2024-02-01T00:00:00.000Z",
        "gated": gated,
        "siblings": [{"rfilename": "m-Q4_K_M.gguf"}],
    }


def run(endpoint: str, **fields: object) -> SearchReport:
    """`search` as the CLI runs it, with a fast retry policy."""
    request = SearchRequest(environ={"HF_ENDPOINT": endpoint}, retry=FAST, **fields)  # type: ignore[arg-type]
    report = asyncio.run(search(request))
    assert isinstance(report, SearchReport)
    return report


def test_429_is_retried_after_retry_after(httpserver: HTTPServer) -> None:
    """A 429 with Retry-After is waited out (the wait names the server's value) and retried."""
    httpserver.expect_ordered_request("/api/models").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "0"}
    )
    httpserver.expect_ordered_request("/api/models").respond_with_json([item("a/b-GGUF")])
    with structlog.testing.capture_logs() as logs:
        report = run(httpserver.url_for("").rstrip("/"))
    assert [h.summary.repo for h in report.hits] == ["a/b-GGUF"]
    [retry] = [e for e in logs if e["event"] == "registry.retry"]
    assert retry["reason"] == "429"
    assert retry["retry_after"] == 0


def test_unreachable_registry_exits_5() -> None:
    """A registry nobody listens on is exit 5, naming the URL, after the retries."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ModelsyncError) as caught:
        run(f"http://127.0.0.1:{port}")
    assert caught.value.exit_code == ExitCode.REMOTE
    assert f"cannot reach http://127.0.0.1:{port}/api/models?" in caught.value.message


def test_persistent_5xx_exits_5(httpserver: HTTPServer) -> None:
    """A registry that answers 503 every time is exit 5 once the retries are spent."""
    httpserver.expect_request("/api/models").respond_with_data("down", status=503)
    with pytest.raises(ModelsyncError) as caught:
        run(httpserver.url_for("").rstrip("/"))
    assert caught.value.exit_code == ExitCode.REMOTE
    assert "answered 503" in caught.value.message
    assert "after 3 attempts" in caught.value.message


def test_gated_repos_left_out_even_when_the_registry_ignores_the_filter(
    httpserver: HTTPServer,
) -> None:
    """A registry that answers gated repos despite `gated=false` does not get them shown."""
    httpserver.expect_request("/api/models").respond_with_json(
        [item("a/open-GGUF"), item("a/gated-GGUF", gated="manual", downloads=99)]
    )
    report = run(httpserver.url_for("").rstrip("/"))
    assert [h.summary.repo for h in report.hits] == ["a/open-GGUF"]
    both = run(httpserver.url_for("").rstrip("/"), gated=True)
    assert [h.summary.repo for h in both.hits] == ["a/gated-GGUF", "a/open-GGUF"]


def test_a_link_that_never_ends_is_bounded_and_deduplicated(httpserver: HTTPServer) -> None:
    """A `Link: rel="next"` back to the same page is followed at most MAX_SEARCH_PAGES times,
    and the repeated repo is listed once."""
    base = httpserver.url_for("").rstrip("/")
    httpserver.expect_request("/api/models").respond_with_json(
        [item("a/loop-GGUF")], headers={"Link": f'<{base}/api/models?cursor=1>; rel="next"'}
    )
    report = run(base)
    assert [h.summary.repo for h in report.hits] == ["a/loop-GGUF"]
    assert len(httpserver.log) == MAX_SEARCH_PAGES


def test_a_body_that_is_not_a_model_list_exits_5(httpserver: HTTPServer) -> None:
    """An answer that is not a JSON list of models is exit 5 naming the registry."""
    httpserver.expect_request("/api/models").respond_with_data(
        json.dumps({"error": "nope"}), content_type="application/json"
    )
    with pytest.raises(ModelsyncError) as caught:
        run(httpserver.url_for("").rstrip("/"))
    assert caught.value.exit_code == ExitCode.REMOTE
    assert "with an invalid model list" in caught.value.message


@pytest.mark.parametrize("repo", ["../../api/whoami-v2", "org/x/../y", "org", "org/x?y=1"])
def test_files_takes_only_a_repository_id(httpserver: HTTPServer, repo: str) -> None:
    """`--files` with anything but `org/name` is exit 2 before any request (no path games in
    the URL it would build)."""
    with pytest.raises(ModelsyncError) as caught:
        asyncio.run(
            search(SearchRequest(files=repo, environ={"HF_ENDPOINT": httpserver.url_for("")[:-1]}))
        )
    assert caught.value.exit_code == ExitCode.USAGE
    assert f"--files {repo!r}: expected a repository id such as org/name" in caught.value.message
    assert httpserver.log == []


def test_a_link_to_another_origin_gets_no_token(httpserver: HTTPServer) -> None:
    """The registry's token goes to its own origin only: a `Link` page on another host is
    fetched without `Authorization`."""
    other = HTTPServer(host="127.0.0.1", port=0)
    other.start()
    try:
        other.expect_request("/page2").respond_with_json([item("b/two-GGUF")])
        httpserver.expect_request("/api/models").respond_with_json(
            [item("a/one-GGUF", downloads=9)],
            headers={"Link": f'<{other.url_for("/page2")}>; rel="next"'},
        )
        request = SearchRequest(
            environ={"HF_ENDPOINT": httpserver.url_for("")[:-1], "HF_TOKEN": "hf_secret_0123"},
            retry=FAST,
        )
        report = asyncio.run(search(request))
        assert isinstance(report, SearchReport)
        assert [h.summary.repo for h in report.hits] == ["a/one-GGUF", "b/two-GGUF"]
        [(first, _)] = httpserver.log
        [(second, _)] = other.log
        assert first.headers.get("Authorization") == "Bearer hf_secret_0123"
        assert "Authorization" not in second.headers
    finally:
        other.clear()
        other.stop()
