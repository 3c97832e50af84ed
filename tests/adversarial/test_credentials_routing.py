"""A secret reaches a host only if the user tied them together (design.md section 10).

A project file (a cloned repository) must not be able to send any environment variable to any
host; the Hub token is found the way huggingface_hub finds it (HF_TOKEN, HF_TOKEN_PATH,
$HF_HOME/token, ~/.cache/huggingface/token) and goes to the Hub and $HF_ENDPOINT only; other
registries take MODELSYNC_REGISTRY_<NAME>_TOKEN. A hostile server on 127.0.0.1 records every
Authorization header it is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory, HubTokens

SECRET = "aws-secret-value-0123456789abcdef"
WEIGHTS = b"gated weights " * 400


@dataclass
class Recorder:
    """A hostile registry: answers 404 to everything and keeps each request's Authorization."""

    url: str
    seen: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def authorizations(self) -> list[str]:
        """Every Authorization header received."""
        return [auth for _, auth in self.seen if auth is not None]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    """The hostile server, running in its own thread and event loop on 127.0.0.1."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    found = Recorder(f"http://127.0.0.1:{sock.getsockname()[1]}")

    async def answer(request: web.Request) -> web.Response:
        found.seen.append((request.path, request.headers.get("Authorization")))
        return web.json_response({"error": "Repository not found"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    loop = asyncio.new_event_loop()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield found
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


GATED = "org/gated"


@pytest.fixture
def gated(hub_repo: HubRepoFactory) -> None:
    """A gated repository on the local hub, GATED: its files need any valid token."""
    hub_repo(GATED, {"weights.bin": WEIGHTS}, gated="auto")


@pytest.fixture
def env(hub: ServerHandle, tmp_path: Path, cli_env: dict[str, str]) -> dict[str, str]:
    """The local hub as $HF_ENDPOINT, empty caches, an empty HF_HOME."""
    assert cli_env  # the working directory is the test's own
    home = tmp_path / "hf-home"
    home.mkdir()
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def error_line(stderr: str) -> str:
    """The one error line among log lines."""
    [line] = [line for line in stderr.splitlines() if line.startswith("modelsync: error:")]
    return line


@pytest.mark.parametrize(
    "registry",
    [
        'type = "huggingface"\nendpoint = "{url}"\n',
        'type = "url"\nendpoint = "{url}/files"\n',
    ],
)
def test_a_project_file_cannot_name_an_arbitrary_variable(
    run_cli: CliRunner, recorder: Recorder, env: dict[str, str], registry: str
) -> None:
    """token-env = "AWS_SECRET_ACCESS_KEY" is refused (exit 2, one line naming the field and the
    variable to use) before any request; the secret never leaves the process."""
    source = "evil://org/m" if "huggingface" in registry else "evil://m.gguf"
    Path("models.toml").write_text(
        "[registries.evil]\n"
        + registry.format(url=recorder.url)
        + 'token-env = "AWS_SECRET_ACCESS_KEY"\n'
        + f'[models.m]\nsource = "{source}"\n'
        + ('include = ["*"]\n' if "huggingface" in registry else f'sha256 = "{"a" * 64}"\n')
    )
    result = run_cli("sync", env={**env, "AWS_SECRET_ACCESS_KEY": SECRET})
    assert result.exit_code == 2, result.stderr
    line = error_line(result.stderr)
    assert line.startswith("modelsync: error: models.toml:4: registries.evil.token-env: ")
    assert "MODELSYNC_REGISTRY_EVIL_TOKEN" in line
    assert SECRET not in result.stderr + result.stdout
    assert recorder.seen == []


def test_hf_token_named_for_another_host_is_refused(
    run_cli: CliRunner, recorder: Recorder, env: dict[str, str], hub_tokens: HubTokens
) -> None:
    """token-env = "HF_TOKEN" on an endpoint that is neither the Hub nor $HF_ENDPOINT is a clear
    error (exit 2), and the hostile host gets no token."""
    Path("models.toml").write_text(
        f'[registries.evil]\ntype = "huggingface"\nendpoint = "{recorder.url}"\n'
        'token-env = "HF_TOKEN"\n[models.m]\nsource = "evil://org/m"\ninclude = ["*"]\n'
    )
    result = run_cli("sync", env={**env, "HF_TOKEN": hub_tokens.reader})
    assert result.exit_code == 2, result.stderr
    line = error_line(result.stderr)
    assert "registries.evil.token-env" in line
    assert "HF_TOKEN goes only to the Hub and $HF_ENDPOINT" in line
    assert hub_tokens.reader not in result.stderr
    assert recorder.authorizations == []


def test_a_declared_registry_gets_only_its_derived_variable(
    run_cli: CliRunner, recorder: Recorder, env: dict[str, str], hub_tokens: HubTokens
) -> None:
    """A registry `corp` at another host gets MODELSYNC_REGISTRY_CORP_TOKEN and nothing else: not
    the Hub token, not any other variable that happens to be set."""
    Path("models.toml").write_text(
        f'[registries.corp]\ntype = "huggingface"\nendpoint = "{recorder.url}"\n'
        '[models.m]\nsource = "corp://org/m"\ninclude = ["*"]\n'
    )
    result = run_cli(
        "sync",
        env={
            **env,
            "HF_TOKEN": hub_tokens.reader,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "MODELSYNC_REGISTRY_CORP_TOKEN": "corp-token-0123456789",
        },
    )
    assert result.exit_code == 2, result.stderr  # 404: the repository does not exist
    assert recorder.seen
    assert recorder.authorizations == ["Bearer corp-token-0123456789"] * len(recorder.seen)


@pytest.mark.usefixtures("gated")
@pytest.mark.parametrize("where", ["HF_TOKEN_PATH", "HF_HOME", "HOME"])
def test_the_token_file_of_a_logged_in_user_reaches_the_hub(
    run_cli: CliRunner,
    env: dict[str, str],
    hub_tokens: HubTokens,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    """`hf auth login`'s token file (at HF_TOKEN_PATH, $HF_HOME/token or
    ~/.cache/huggingface/token) opens a gated repository on $HF_ENDPOINT."""
    tmp_path = Path.cwd()
    if where == "HF_TOKEN_PATH":
        token_file = tmp_path / "elsewhere" / "my-token"
        env = {**env, "HF_TOKEN_PATH": str(token_file)}
    elif where == "HF_HOME":
        token_file = Path(env["HF_HOME"]) / "token"
    else:
        monkeypatch.delenv("HF_HOME")
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        env = {k: v for k, v in env.items() if k != "HF_HOME"}
        env["HOME"] = str(tmp_path / "user")
        token_file = tmp_path / "user" / ".cache" / "huggingface" / "token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(hub_tokens.reader + "\n")
    Path("models.toml").write_text(f'[models.g]\nsource = "hf://{GATED}"\ninclude = ["*"]\n')
    result = run_cli("sync", env=env)
    assert result.exit_code == 0, result.stderr
    placed = Path("models/g/weights.bin").read_bytes()
    assert hashlib.sha256(placed).digest() == hashlib.sha256(WEIGHTS).digest()
    assert hub_tokens.reader not in Path("models.lock").read_text()


@pytest.mark.usefixtures("gated")
@pytest.mark.parametrize("token_env", ["", 'token-env = "HF_TOKEN"\n'])
def test_an_endpoint_equal_to_hf_endpoint_gets_the_hub_token(
    run_cli: CliRunner,
    env: dict[str, str],
    hub: ServerHandle,
    hub_tokens: HubTokens,
    token_env: str,
) -> None:
    """A registry whose explicit endpoint is $HF_ENDPOINT (trailing slash or not) is the Hub the
    user chose: HF_TOKEN goes there, with or without token-env = "HF_TOKEN"."""
    Path("models.toml").write_text(
        f'[registries.mirror]\ntype = "huggingface"\nendpoint = "{hub.endpoint}/"\n'
        + token_env
        + f'[models.g]\nsource = "mirror://{GATED}"\ninclude = ["*"]\n'
    )
    result = run_cli("sync", env={**env, "HF_TOKEN": hub_tokens.reader})
    assert result.exit_code == 0, result.stderr
    assert Path("models/g/weights.bin").read_bytes() == WEIGHTS
