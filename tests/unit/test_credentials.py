"""The credentials rule as pure functions: which variable a registry reads, which host may get
a token. Plain http to a non-loopback host cannot be tested against a real remote host, so the
rule is tested here as the function every request path goes through (`credentials.grant`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from modelsync.credentials import (
    grant,
    hub_may_receive,
    hub_token,
    may_carry_token,
    registry_token_env,
)

HUB = "hf_hub_token_0123456789abcdef"


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        ("corp", "MODELSYNC_REGISTRY_CORP_TOKEN"),
        ("my-corp.eu", "MODELSYNC_REGISTRY_MY_CORP_EU_TOKEN"),
        ("Files_2", "MODELSYNC_REGISTRY_FILES_2_TOKEN"),
    ],
)
def test_the_variable_is_derived_from_the_registry_name(name: str, variable: str) -> None:
    """Upper case, anything not a letter or digit becomes `_` (uv's convention)."""
    assert registry_token_env(name) == variable


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://hub.corp.example", True),
        ("http://127.0.0.1:8765", True),
        ("http://127.8.9.10", True),
        ("http://localhost:8000/hf", True),
        ("http://[::1]:8000", True),
        ("http://hub.corp.example", False),
        ("http://10.0.0.5:8765", False),
        ("http://127.0.0.1.evil.example", False),
        ("ftp://127.0.0.1", False),
    ],
)
def test_tokens_go_over_plain_http_only_to_loopback(url: str, allowed: bool) -> None:
    """https anywhere; plain http only to a loopback address or localhost."""
    assert may_carry_token(url) is allowed


def test_a_token_for_a_plain_http_host_is_withheld() -> None:
    """A registry at http://<LAN host> gets no token even when its variable is set; the same
    registry over https gets it."""
    env = {"MODELSYNC_REGISTRY_CORP_TOKEN": "t-corp"}
    with capture_logs() as logs:
        plain = grant("corp", "huggingface", "http://hub.lan:8080", None, env)
    secure = grant("corp", "huggingface", "https://hub.lan", None, env)
    assert (plain.token, secure.token) == (None, "t-corp")
    assert logs == [
        {
            "event": "credentials.withheld",
            "log_level": "warning",
            "registry": "corp",
            "endpoint": "http://hub.lan:8080",
            "variable": "MODELSYNC_REGISTRY_CORP_TOKEN",
        }
    ]
    hub = grant("hf", "huggingface", None, None, {"HF_ENDPOINT": "http://hub.lan", "HF_TOKEN": HUB})
    assert hub.token is None


def test_the_hub_token_goes_to_the_hub_and_hf_endpoint_only() -> None:
    """The Hub itself and $HF_ENDPOINT (any spelling) may get it; another host may not."""
    env = {"HF_ENDPOINT": "http://127.0.0.1:9/"}
    assert hub_may_receive("https://huggingface.co/", env)
    assert hub_may_receive("http://127.0.0.1:9", env)
    assert hub_may_receive("HTTP://127.0.0.1:9/", env)
    assert not hub_may_receive("http://127.0.0.1:10", env)
    assert not hub_may_receive("https://hub.corp.example", env)
    implicit = grant("hf", "huggingface", None, None, {**env, "HF_TOKEN": HUB})
    declared = grant("corp", "huggingface", "https://hub.corp", None, {**env, "HF_TOKEN": HUB})
    assert (implicit.endpoint, implicit.token, implicit.variable) == (
        "http://127.0.0.1:9",
        HUB,
        "HF_TOKEN",
    )
    assert (declared.token, declared.variable) == (None, "MODELSYNC_REGISTRY_CORP_TOKEN")


def test_url_registries_read_only_their_own_variable() -> None:
    """A url registry never gets the Hub token; the implicit one (plain URLs) gets nothing."""
    env = {"HF_TOKEN": HUB, "MODELSYNC_REGISTRY_URL_TOKEN": "u", "MODELSYNC_REGISTRY_F_TOKEN": "f"}
    assert grant("f", "url", "https://files.example/m", None, env).token == "f"
    assert grant("g", "url", "https://huggingface.co", None, env).token is None
    assert grant("url", "url", None, None, env).token is None


def test_the_hub_token_file_is_found_like_huggingface_hub(tmp_path: Path) -> None:
    """HF_TOKEN first, then HF_TOKEN_PATH, then $HF_HOME/token; whitespace and newlines dropped."""
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "token").write_text(" from-home\r\n")
    (tmp_path / "path").write_text("from-path\n")
    home = {"HF_HOME": str(tmp_path / "home")}
    assert hub_token(home) == "from-home"
    assert hub_token({**home, "HF_TOKEN_PATH": str(tmp_path / "path")}) == "from-path"
    assert hub_token({**home, "HF_TOKEN": "from-env"}) == "from-env"
    assert hub_token({"HF_HOME": str(tmp_path / "nowhere")}) is None
