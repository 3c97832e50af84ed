"""Hostile input to the server: YAML bombs, deep JSON, bad multipart, huge numbers get a 4xx."""

from __future__ import annotations

import json

import pytest
from huggingface_hub import HfApi

from modelsync.server.runner import ServerHandle
from tests.fixtures.hub import HubRepoFactory, HubTokens, http_request

HUGE = "9" * 5000  # past Python's 4300-digit limit on int(str)
DEEP = 100_000  # far past the interpreter's recursion limit

# Six levels of six references each: 46,656 strings once expanded, from a few hundred bytes.
# Real bombs go to nine levels (387 million); this one is small enough to expand quickly on a
# server that allows aliases, so a failing test shows the expansion instead of hanging.
ALIAS_BOMB = """\
a: &a [x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e]"""
DEEP_YAML = "a: " + "[" * DEEP + "]" * DEEP


def _deep_json(key: str) -> bytes:
    return f'{{"{key}": '.encode() + b"[" * DEEP + b"]" * DEEP + b"}"


def _validate(hub: ServerHandle, yaml_text: str) -> tuple[int, dict[str, object]]:
    content = f"---\n{yaml_text}\n---\n# card\n"
    answer = http_request(
        hub.endpoint,
        "POST",
        "/api/validate-yaml",
        headers={"Content-Type": "application/json"},
        body=json.dumps({"content": content, "repoType": "model"}).encode(),
    )
    return answer.status, json.loads(answer.body)


def test_validate_yaml_refuses_an_alias_bomb(hub: ServerHandle) -> None:
    """An alias bomb sent to the anonymous validate-yaml route is a 400 that names aliases."""
    status, body = _validate(hub, ALIAS_BOMB)
    assert status == 400
    assert "alias" in str(body["error"])
    status, body = _validate(hub, "license: mit\nanchor_only: &x [1, 2]")
    assert (status, body) == (200, {"errors": [], "warnings": []})


def test_validate_yaml_refuses_deep_nesting_and_oversized_content(hub: ServerHandle) -> None:
    """Deeply nested YAML and a card over the size limit are a 400, never a 500."""
    status, body = _validate(hub, DEEP_YAML)
    assert status == 400
    assert "deep" in str(body["error"])
    status, body = _validate(hub, "a: " + "x" * (2 * 1024 * 1024))
    assert status in (400, 413)
    assert "error" in body


def test_card_with_an_alias_bomb_is_not_expanded(
    hub: ServerHandle, hub_repo: HubRepoFactory
) -> None:
    """A README whose front matter is an alias bomb gives no cardData instead of its expansion."""
    hub_repo("org/bomb", {"README.md": f"---\n{ALIAS_BOMB}\n---\n# bomb\n"})
    info = HfApi(endpoint=hub.endpoint).model_info("org/bomb")
    assert info.card_data is None


@pytest.fixture
def files(hub_repo: HubRepoFactory) -> None:
    """`org/files` holding `a.txt` (`hello`)."""
    hub_repo("org/files", {"a.txt": "hello"})


def _writer_headers(tokens: HubTokens, content_type: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens.writer}", "Content-Type": content_type}


@pytest.mark.parametrize(
    ("method", "path", "headers", "body"),
    [
        ("GET", "/org/files/resolve/main/a.txt", {"Range": f"bytes={HUGE}-"}, None),
        ("GET", f"/api/models?limit={HUGE}", {}, None),
        ("GET", "/api/models?limit=%C2%B2", {}, None),
        ("GET", "/api/models?cursor=%C2%B2", {}, None),
        ("GET", f"/api/models?num_parameters=min:{HUGE}", {}, None),
        ("PUT", f"/lfs/upload/{'a' * 64}?repo=org/files&size=1&exp={HUGE}&sig=x", {}, b"x"),
        ("GET", f"/cdn/{'a' * 64}?exp={HUGE}&sig=x", {}, None),
        ("GET", f"/cdn/{'a' * 64}?exp=%C2%B2&sig=x", {}, None),
        ("POST", "/api/repos/create", {"Content-Type": "application/json"}, _deep_json("name")),
        ("POST", "/api/validate-yaml", {"Content-Type": "application/json"}, _deep_json("x")),
        (
            "POST",
            "/api/models/org/files/paths-info/main",
            {"Content-Type": "application/json"},
            _deep_json("paths"),
        ),
        (
            "POST",
            "/api/models/org/files/paths-info/main",
            {"Content-Type": "multipart/form-data; boundary=xx"},
            b"--xx\r\nContent-Disposition: form-data\r\n\r\nabc\r\n--zz",
        ),
        (
            "POST",
            "/api/models/org/files/paths-info/main",
            {"Content-Type": "multipart/form-data"},
            b"garbage",
        ),
    ],
)
@pytest.mark.usefixtures("files")
def test_hostile_requests_get_a_4xx(
    hub: ServerHandle, method: str, path: str, headers: dict[str, str], body: bytes | None
) -> None:
    """Huge or non-ASCII numbers, deep JSON and malformed multipart are client errors, not 500s."""
    base = hub.cdn_endpoint if path.startswith(("/lfs/", "/cdn/")) else hub.endpoint
    assert base is not None
    answer = http_request(base, method, path, headers=headers, body=body)
    assert 400 <= answer.status < 500, answer.body[:200]
    assert "error" in json.loads(answer.body)


@pytest.mark.parametrize("header", [f"bytes=-{HUGE}", f"bytes=0-{HUGE}"])
@pytest.mark.usefixtures("files")
def test_huge_range_ends_mean_the_whole_file(hub: ServerHandle, header: str) -> None:
    """A range whose end or suffix has thousands of digits is the whole file (206), not a 500."""
    answer = http_request(
        hub.endpoint, "GET", "/org/files/resolve/main/a.txt", headers={"Range": header}
    )
    assert (answer.status, answer.body) == (206, b"hello")
    assert answer.headers["content-range"] == "bytes 0-4/5"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/models/tester/deep/preupload/main", _deep_json("files")),
        ("/tester/deep.git/info/lfs/objects/batch", _deep_json("objects")),
        ("/tester/deep.git/info/lfs/objects/verify", _deep_json("oid")),
        ("/api/models/tester/deep/commit/main", _deep_json("value") + b"\n"),
    ],
)
def test_deep_json_from_a_writer_gets_a_400(
    hub: ServerHandle, hub_tokens: HubTokens, path: str, body: bytes
) -> None:
    """Deeply nested JSON in upload bodies (preupload, LFS batch/verify, commit lines) is a 400."""
    HfApi(endpoint=hub.endpoint, token=hub_tokens.writer).create_repo("tester/deep")
    answer = http_request(
        hub.endpoint,
        "POST",
        path,
        headers=_writer_headers(hub_tokens, "application/json"),
        body=body,
    )
    assert answer.status == 400, answer.body[:200]
    assert "deep" in json.loads(answer.body)["error"]
