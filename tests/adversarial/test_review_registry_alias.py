"""Two registries whose names derive the same token variable (`corp_a`, `corp-a`, `Corp.A` all
read MODELSYNC_REGISTRY_CORP_A_TOKEN) would send the user's token for one to the other's host:
a pull request that adds `corp-a` at a new host looks like a registry without credentials. The
manifest is refused (exit 2) before any request."""

from __future__ import annotations

from pathlib import Path

from tests.adversarial import test_credentials_routing as routing
from tests.adversarial.test_credentials_routing import Recorder, error_line
from tests.fixtures.cli import CliRunner

recorder = routing.recorder  # the hostile registry and the environment, as fixtures here
env = routing.env
TOKEN = "corp-token-0123456789"


def test_registries_sharing_one_token_variable_are_refused(
    run_cli: CliRunner, recorder: Recorder, env: dict[str, str]
) -> None:
    """`[registries.corp_a]` (the user's) and `[registries."corp-a"]` (another host) in one
    manifest: exit 2 naming both and the variable; the other host gets no request."""
    Path("models.toml").write_text(
        '[registries.corp_a]\ntype = "huggingface"\nendpoint = "https://hub.corp.example"\n'
        f'[registries."corp-a"]\ntype = "huggingface"\nendpoint = "{recorder.url}"\n'
        '[models.m]\nsource = "corp-a://org/m"\ninclude = ["*"]\n'
    )
    result = run_cli("lock", env={**env, "MODELSYNC_REGISTRY_CORP_A_TOKEN": TOKEN})
    assert result.exit_code == 2, result.stderr
    line = error_line(result.stderr)
    assert "registries.corp-a" in line
    assert "corp_a" in line
    assert "MODELSYNC_REGISTRY_CORP_A_TOKEN" in line
    assert recorder.seen == []
