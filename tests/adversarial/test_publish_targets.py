"""Attacks on `modelsync publish`: `[publish.*]` tables were accepted unchecked (typos, paths
outside the project), huggingface_hub would send its own implicit Hub token to any endpoint, and
bytes rewritten between plan and commit would be published under another digest than shown."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from modelsync.credentials import grant
from modelsync.errors import IntegrityError, ManifestError
from modelsync.manifest.load import parse_manifest
from modelsync.publish.plan import LocalFile, plan_upload
from modelsync.publish.upload import HubClient
from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubTokens

pytestmark = pytest.mark.filterwarnings(
    "ignore:Use 'content=<...>' to upload raw bytes/text content.:DeprecationWarning"
)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            'repo = "t/x"\nfiles = ["*.gguf"]\nlicence = "mit"\n',
            'models.toml:4: publish.t.licence: unknown key; did you mean "license"?',
        ),
        (
            'repo = "t/x"\nfiles = ["../secrets/*"]\n',
            "models.toml:3: publish.t.files: unsafe glob '../secrets/*'; use a pattern relative",
        ),
        (
            'repo = "t/x"\nfiles = ["/etc/*"]\n',
            "models.toml:3: publish.t.files: unsafe glob '/etc/*'; use a pattern relative",
        ),
        (
            'repo = "t/x"\nfiles = ["*.gguf"]\nmodel = "m"\n',
            "models.toml:1: publish.t: a publish target needs exactly one of files",
        ),
        (
            'repo = "t/x"\nmodel = "other"\n',
            'models.toml:3: publish.t.model: unknown model "other"; use one of [models]: m',
        ),
        (
            'repo = "t/x"\nregistry = "url"\nfiles = ["*.gguf"]\n',
            'models.toml:3: publish.t.registry: registry of type url "url": publish pushes to',
        ),
        (
            'repo = "not a repo"\nfiles = ["*.gguf"]\n',
            'models.toml:2: publish.t.repo: invalid repository id "not a repo"; expected',
        ),
        (
            'repo = "t/x"\nfiles = ["*.gguf"]\nprivate = "yes"\n',
            'models.toml:4: publish.t.private: expected true or false, found "yes"',
        ),
    ],
)
def test_publish_tables_are_validated_with_lines(table: str, expected: str) -> None:
    """Unknown keys, unsafe globs, contradictions and wrong types in `[publish.NAME]` are
    manifest errors naming the line and the key, like the rest of models.toml."""
    text = f'[publish.t]\n{table}\n[models.m]\nsource = "org/m"\n'
    with pytest.raises(ManifestError) as caught:
        parse_manifest(text)
    assert caught.value.one_line().startswith(expected)


def test_implicit_hub_token_never_reaches_another_registry(
    run_cli_process: CliRunner, hub: ServerHandle, hub_tokens: HubTokens, tmp_path: Path
) -> None:
    """With HF_TOKEN set and huggingface_hub's implicit token on (its default), publishing to a
    declared registry whose variable is unset goes anonymous: refused, naming that variable,
    and nothing is created (the Hub token goes to the Hub and $HF_ENDPOINT only)."""
    (tmp_path / "w.gguf").write_bytes(b"w" * 100)
    (tmp_path / "models.toml").write_text(
        f'[registries.corp]\ntype = "huggingface"\nendpoint = "{hub.endpoint}"\n'
        '[publish.t]\nrepo = "tester/leak"\nregistry = "corp"\nfiles = ["w.gguf"]\n'
    )
    result = run_cli_process(
        "publish", env={"HF_TOKEN": hub_tokens.writer, "HF_HUB_DISABLE_IMPLICIT_TOKEN": "0"}
    )
    assert result.exit_code == 5, result.stderr
    assert "the token from MODELSYNC_REGISTRY_CORP_TOKEN is not set" in result.stderr
    assert hub.repos.repo_ids() == []


def test_bytes_changed_after_planning_are_not_published(
    hub: ServerHandle, hub_tokens: HubTokens, tmp_path: Path
) -> None:
    """A file rewritten between the plan and the commit is refused (exit 4) before any upload:
    the commit never carries a digest other than the one the plan showed."""
    path = tmp_path / "m.gguf"
    path.write_bytes(b"planned" * 100)
    planned = LocalFile(
        "m.gguf", path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest(), path
    )
    path.write_bytes(b"swapped" * 100)
    plan = plan_upload("tester/swap", [planned], None)
    access = grant(
        "corp",
        "huggingface",
        hub.endpoint,
        None,
        {"MODELSYNC_REGISTRY_CORP_TOKEN": hub_tokens.writer},
    )
    with pytest.raises(IntegrityError) as caught:
        HubClient(access, "tester/swap").apply(plan, private=False, message="x")
    assert caught.value.message.startswith(f"{path}: changed while publishing (planned sha256 ")
    assert hub.repos.repo_ids() == []
