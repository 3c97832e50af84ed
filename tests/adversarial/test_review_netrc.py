"""aiohttp's `trust_env` (for HTTP(S)_PROXY) also sends ~/.netrc logins: a `default` entry to any
host a project file names, a host's entry over plain http, and next to our Bearer token it
refuses the request. Credentials come only from credentials.py's rule, so no netrc login is
ever sent, and the session applies HTTP(S)_PROXY itself (test_proxy_from_env)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.adversarial import test_credentials_routing as routing
from tests.adversarial.test_credentials_routing import GATED, WEIGHTS, Recorder
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubTokens

recorder = routing.recorder  # the hostile server and the environment, as fixtures here
env = routing.env
gated = routing.gated


def test_no_netrc_login_reaches_a_host_the_project_names(
    run_cli: CliRunner, recorder: Recorder, env: dict[str, str], tmp_path: Path
) -> None:
    """With a netrc `default` login, `lock` of a project whose model comes from the hostile
    server sends it no Authorization at all."""
    netrc = tmp_path / "netrc"
    netrc.write_text("default login user password netrc-secret-0123456789\n")
    netrc.chmod(0o600)
    Path("models.toml").write_text(
        f'[registries.evil]\ntype = "huggingface"\nendpoint = "{recorder.url}"\n'
        '[models.m]\nsource = "evil://org/m"\ninclude = ["*"]\n'
    )
    run_cli("lock", env={**env, "NETRC": str(netrc)})  # exit 2: the server answers 404
    assert recorder.seen
    assert recorder.authorizations == []


@pytest.mark.usefixtures("gated")
def test_a_netrc_entry_for_the_hub_does_not_break_a_token(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path, hub_tokens: HubTokens
) -> None:
    """A netrc login for the hub's host (as git users of the Hub keep) next to HF_TOKEN: `sync`
    of a gated model still works with the token (aiohttp refuses a request that has both an
    Authorization header and a netrc login)."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password netrc-secret-0123456789\n")
    netrc.chmod(0o600)
    Path("models.toml").write_text(f'[models.g]\nsource = "hf://{GATED}"\ninclude = ["*"]\n')
    result = run_cli("sync", env={**env, "NETRC": str(netrc), "HF_TOKEN": hub_tokens.reader})
    assert result.exit_code == 0, result.stderr
    assert Path("models/g/weights.bin").read_bytes() == WEIGHTS
