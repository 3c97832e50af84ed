"""Ollama sources, locks and exports against hostile input: hand-edited locks, a registry that
serves other bytes for a pinned digest, a blob asked for through another model, an export name
that would climb out of Ollama's folder."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubFactory, HubTokens, http_request
from tests.fixtures.models import GgufFactory
from tests.fixtures.ollama import MODEL, TEMPLATE, OllamaModels, OllamaRegistry

GGUF = b"GGUF" + b"\x00" * 60  # a blob nobody parses (the registry tests)


def _project(registry: OllamaRegistry, tmp_path: Path) -> dict[str, str]:
    Path("models.toml").write_text(
        f'[registries.ollama]\ntype = "ollama"\nendpoint = "{registry.endpoint}"\n\n'
        '[models.gemma]\nsource = "ollama://gemma3:1b"\ncontext = 512\n'
    )
    return {"HF_HUB_CACHE": str(tmp_path / "no-hf"), "OLLAMA_MODELS": str(tmp_path / "no-ol")}


@pytest.fixture
def locked(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, gguf_factory: GgufFactory, tmp_path: Path
) -> dict[str, str]:
    """A project whose lock pins library/gemma3:1b (a small GGUF file and a template)."""
    model = gguf_factory("m.gguf", quant="Q4_K_M", n_layers=1).read_bytes()
    ollama_registry.models.add("library/gemma3:1b", {MODEL: model, TEMPLATE: b"{{ .Prompt }}"})
    env = _project(ollama_registry, tmp_path)
    result = run_cli("lock", env=env)
    assert result.exit_code == 0, result.stderr
    return env


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [
        (r'repo = "library/gemma3"', 'repo = "library/../../v2/other"'),
        (r'commit = "sha256:[0-9a-f]{64}"', 'commit = "' + "a" * 40 + '"'),
    ],
)
def test_a_hand_edited_ollama_entry_is_refused_before_any_request(
    run_cli: CliRunner,
    ollama_registry: OllamaRegistry,
    locked: dict[str, str],
    pattern: str,
    replacement: str,
) -> None:
    """An Ollama entry whose repo is not `ns/model`, or whose commit is not a manifest digest,
    stops `sync --frozen` with exit 2 naming the model; no blob is asked for."""
    lock = Path("models.lock")
    text, count = re.subn(pattern, replacement, lock.read_text())
    assert count == 1
    lock.write_text(text)
    counters = ollama_registry.server.repos.counters
    before = counters.requests("ollama_blob")
    result = run_cli("sync", "--frozen", env=locked)
    assert result.exit_code == 2, result.stderr
    assert "model gemma comes from ollama registry ollama" in result.stderr
    assert counters.requests("ollama_blob") == before
    assert not Path("models/gemma").exists()


def test_a_hub_entry_with_a_digest_commit_is_refused(
    run_cli: CliRunner, hub_repo: object, hub: object, tmp_path: Path
) -> None:
    """The lock accepts `sha256:` commits for Ollama entries only: a Hub entry carrying one is
    a hand-edited lock (exit 2), not a URL to build."""
    sha = hashlib.sha256(b"x").hexdigest()
    Path("models.toml").write_text('[models.t]\nsource = "org/t"\ninclude = ["*"]\n')
    Path("models.lock").write_text(
        'version = 1\nmanifest-digest = "sha256:' + "0" * 64 + '"\n\n[[model]]\nname = "t"\n'
        'registry = "hf"\nrepo = "org/t"\nrevision = "main"\ncommit = "sha256:' + sha + '"\n'
        'reason = "r"\ninputs = "sha256:' + "0" * 64 + '"\n\n[[model.file]]\npath = "w.bin"\n'
        'size = 1\nsha256 = "' + sha + '"\n'
    )
    result = run_cli("sync", "--frozen", env={"OLLAMA_MODELS": str(tmp_path / "no")})
    assert result.exit_code == 2, result.stderr
    assert "needs a 40-hex commit" in result.stderr


def test_a_registry_serving_other_bytes_for_a_pinned_digest_is_refused(
    run_cli: CliRunner, ollama_registry: OllamaRegistry, locked: dict[str, str]
) -> None:
    """Re-locking a changed entry asks for the pinned manifest by digest; a registry answering
    with bytes that hash otherwise is a remote error (exit 5) and the lock is kept."""
    before = Path("models.lock").read_bytes()
    pinned = re.search(r'commit = "(sha256:[0-9a-f]{64})"', before.decode())
    assert pinned is not None
    # The tag moved; the old manifest's bytes are replaced in place (a registry that lies).
    ollama_registry.models.add("library/gemma3:1b", {MODEL: GGUF + b"new"})
    Path("models.toml").write_text(Path("models.toml").read_text().replace("512", "1024"))
    result = run_cli("lock", env=locked)
    # The registry no longer has the pinned manifest: the locked commit is gone (exit 5).
    assert result.exit_code == 5, result.stderr
    assert pinned.group(1) in result.stderr
    assert Path("models.lock").read_bytes() == before


def test_the_registry_serves_a_blob_only_for_a_model_that_names_it(
    ollama_registry: OllamaRegistry,
) -> None:
    """A blob of one model is not reachable through another model's path (404 BLOB_UNKNOWN)."""
    ollama_registry.models.add("library/gemma3:1b", {MODEL: GGUF})
    ollama_registry.models.add("team/other:1", {MODEL: GGUF + b"other"})
    digest = hashlib.sha256(GGUF).hexdigest()
    answer = http_request(ollama_registry.endpoint, "GET", f"/v2/team/other/blobs/sha256:{digest}")
    assert answer.status == 404
    assert b"BLOB_UNKNOWN" in answer.body
    ok = http_request(ollama_registry.endpoint, "GET", f"/v2/library/gemma3/blobs/sha256:{digest}")
    assert ok.status == 307


@pytest.mark.parametrize("name", ["../../evil:1", "a/b/c", "x:../y", "lib/..:1"])
def test_an_export_name_cannot_leave_ollamas_folder(
    run_cli: CliRunner, locked: dict[str, str], tmp_path: Path, name: str
) -> None:
    """`export --ollama` takes only names Ollama accepts; anything else is exit 2 and nothing
    is written anywhere."""
    assert run_cli("sync", env=locked).exit_code == 0
    home = tmp_path / "ollama-home"
    result = run_cli("export", "--ollama", name, env={**locked, "OLLAMA_MODELS": str(home)})
    assert result.exit_code == 2, result.stderr
    assert "not an Ollama model name" in result.stderr
    assert not home.exists()
    assert not (tmp_path / "evil").exists()


def test_a_private_registry_gets_its_token_and_the_cdn_never_does(
    run_cli: CliRunner,
    hub_factory: HubFactory,
    hub_tokens: HubTokens,
    gguf_factory: GgufFactory,
    tmp_path: Path,
) -> None:
    """A declared Ollama registry takes MODELSYNC_REGISTRY_<NAME>_TOKEN (credentials.py's one
    rule): without it lock is refused (exit 5) naming the variable; with it lock and sync work,
    and the CDN the blobs redirect to never sees an Authorization header."""
    root = tmp_path / "private-models"
    models = OllamaModels(root)
    models.add("team/m:1", {MODEL: gguf_factory("m.gguf", quant="Q8_0", n_layers=1).read_bytes()})
    server = hub_factory(root=tmp_path / "hub-private", ollama_root=root, ollama_private=True)
    Path("models.toml").write_text(
        f'[registries.corp]\ntype = "ollama"\nendpoint = "{server.endpoint}"\n\n'
        '[models.m]\nsource = "corp://team/m:1"\n'
    )
    env = {"HF_HUB_CACHE": str(tmp_path / "no-hf"), "OLLAMA_MODELS": str(tmp_path / "no-ol")}
    refused = run_cli("lock", env=env)
    assert refused.exit_code == 5, refused.stderr
    assert "MODELSYNC_REGISTRY_CORP_TOKEN" in refused.stderr
    env["MODELSYNC_REGISTRY_CORP_TOKEN"] = hub_tokens.reader
    assert run_cli("lock", env=env).exit_code == 0
    result = run_cli("sync", env=env)
    assert result.exit_code == 0, result.stderr
    counters = server.repos.counters
    cdn = counters.request_log("ollama_cdn_blob")
    assert cdn  # the blobs did come through the CDN
    assert all("authorization" not in r.header_names for r in cdn)
    assert all("authorization" in r.header_names for r in counters.request_log("ollama_blob"))
    assert hub_tokens.reader not in result.stdout + result.stderr + Path("models.lock").read_text()
