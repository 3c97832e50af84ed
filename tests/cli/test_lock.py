"""`modelsync lock` on the command line: exit codes, one-line errors, --check, --explain, --json."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory, HubTokens
from tests.fixtures.models import TINY_REPO as REPO

PROFILES = '[profiles.big]\nram = "8GiB"\nvram = "24GiB"\n[profiles.small]\nram = "1GiB"\n'


@pytest.fixture
def env(hub: ServerHandle) -> dict[str, str]:
    """The environment pointing the implicit `hf` registry at the local hub."""
    return {"HF_ENDPOINT": hub.endpoint}


def manifest(text: str, profiles: str = PROFILES) -> Path:
    path = Path("models.toml")
    path.write_text(profiles + text)
    return path


def test_lock_then_check(run_cli: CliRunner, tiny: str, env: dict[str, str]) -> None:
    """`lock` writes models.lock; `lock --check` then passes; an edit makes it exit 3."""
    manifest(f'[models.tiny]\nsource = "hf://{REPO}"\n')
    result = run_cli("lock", env=env)
    assert result.exit_code == 0, result.stderr
    assert (
        f"tiny: Q8_0 @ {tiny[:7]}: Q8_0: the same on every profile: big full GPU" in result.stdout
    )
    assert "wrote models.lock (1 models, 1 resolved" in result.stdout
    assert Path("models.lock").is_file()
    again = run_cli("lock", env=env)
    assert "(kept)" in again.stdout
    assert "unchanged: models.lock" in again.stdout
    assert run_cli("lock", "--check").exit_code == 0
    Path("models.toml").write_text(Path("models.toml").read_text() + "context = 1024\n")
    stale = run_cli("lock", "--check")
    assert stale.exit_code == 3
    assert stale.stderr == (
        "modelsync: error: models.lock is stale: models.toml changed since the lock was written; "
        "run `modelsync lock` and commit it\n"
    )


def test_check_without_lock_exits_3(run_cli: CliRunner) -> None:
    """A missing lock is stale: exit 3 with one line."""
    manifest('[models.tiny]\nsource = "org/x"\n')
    result = run_cli("lock", "--check")
    assert result.exit_code == 3
    assert result.stderr == (
        "modelsync: error: models.lock is stale: there is no lock; "
        "run `modelsync lock` and commit it\n"
    )


def test_manifest_error_is_one_line_exit_2(run_cli: CliRunner) -> None:
    """A bad quantization name exits 2 with file:line:key and the fix, and writes nothing."""
    manifest(
        '[models.gemma]\nsource = "hf://ggml-org/gemma-3-1b-it-GGUF"\nquant = "Q4KM"\n', profiles=""
    )
    result = run_cli("lock")
    assert result.exit_code == 2
    assert result.stderr == (
        'modelsync: error: models.toml:3: models.gemma.quant: unknown quantization "Q4KM"; '
        'did you mean "Q4_K_M"?\n'
    )
    assert not Path("models.lock").exists()


def test_missing_quant_lists_what_exists(
    run_cli: CliRunner, tiny: str, env: dict[str, str]
) -> None:
    """A named quantization the repo lacks exits 2 listing the repo's quantizations."""
    manifest(f'[models.tiny]\nsource = "{REPO}:IQ4_XS"\n')
    result = run_cli("lock", env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        f'modelsync: error: models.tiny: quantization "IQ4_XS" is not in hf:{REPO}@{tiny[:7]}; '
        "it has: F16, Q8_0, Q6_K, Q5_K_M, Q4_K_M, Q3_K_M, Q2_K; "
        'set quant to one of these, or to "best"\n'
    )


def test_nothing_fits_exits_2_with_the_numbers(
    run_cli: CliRunner, tiny: str, env: dict[str, str]
) -> None:
    """When nothing fits the profile, exit 2 gives the smallest need and what the profile has."""
    manifest(f'[models.tiny]\nsource = "{REPO}"\n', profiles='[profiles.pi]\nram = "128MiB"\n')
    result = run_cli("lock", env=env)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"modelsync: error: models.tiny: nothing in hf:{REPO}@{tiny[:7]} fits profile pi "
        "(128 MiB RAM): the smallest, Q3_K_M, needs est. 162 MiB at ctx 4096; usable: 96 MiB RAM; "
        "declare a bigger profile, lower context (now 4096), or name a smaller quant"
    )
    assert result.stderr.count("\n") == 1
    assert not Path("models.lock").exists()


def test_missing_repo_exits_2(run_cli: CliRunner, hub: ServerHandle, env: dict[str, str]) -> None:
    """A repository that does not exist is bad input: exit 2 naming it and the fix."""
    manifest('[models.x]\nsource = "org/nothing-here"\n')
    missing = run_cli("lock", env=env)
    assert missing.exit_code == 2
    assert missing.stderr.startswith(
        "modelsync: error: hf:org/nothing-here does not exist "
        f"(the registry at {hub.endpoint} answered 404); check the source in models.toml"
    )


def test_gated_repo_without_token_exits_5_naming_the_variable(
    run_cli: CliRunner,
    hub_repo: HubRepoFactory,
    tiny_dir: Path,
    env: dict[str, str],
    hub_tokens: HubTokens,
) -> None:
    """A gated repository without a token says which variable to set; with HF_TOKEN it locks."""
    hub_repo("org/Gated-GGUF", {p.name: p for p in tiny_dir.iterdir()}, gated="auto")
    manifest('[models.g]\nsource = "org/Gated-GGUF:Q4_K_M"\n')
    result = run_cli("lock", env=env)
    assert result.exit_code == 5
    assert result.stderr == (
        "modelsync: error: hf:org/Gated-GGUF is gated: it needs an access token; "
        "set HF_TOKEN for an account that has accepted the repository's terms\n"
    )
    ok = run_cli("lock", env={**env, "HF_TOKEN": hub_tokens.reader})
    assert ok.exit_code == 0, ok.stderr
    assert hub_tokens.reader not in Path("models.lock").read_text()
    assert hub_tokens.reader not in ok.stdout + ok.stderr


def test_explain_prints_the_table(run_cli: CliRunner, tiny: str, env: dict[str, str]) -> None:
    """--explain prints, per profile, every candidate with memory, fit and verdict, and why
    full precision was skipped."""
    manifest(f'[models.tiny]\nsource = "hf://{REPO}"\n')
    result = run_cli("lock", "--explain", env=env)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert f"tiny (hf:{REPO}) on profile big: 24.0 GiB VRAM, 8.0 GiB RAM" in out
    assert f"tiny (hf:{REPO}) on profile small: 1.0 GiB RAM" in out
    assert out.count("candidate  files  size") == 2
    assert out.count("→  Q8_0") == 2
    assert "below floor" in out
    assert out.count("  full precision\n") == 2  # F16's row: `best` goes up to Q8_0
    assert (
        out.count(
            "  skipped F16: full precision costs twice Q8_0 for no measurable quality in GGUF "
            'inference; name it, or set quant = "best-full"'
        )
        == 2
    )
    assert "  reason: Q8_0: the best quality that fits (full GPU" in out


def test_json_report(run_cli: CliRunner, tiny: str, env: dict[str, str]) -> None:
    """--json prints one report object with the models, commits and whether it wrote."""
    manifest(f'[models.tiny]\nsource = "hf://{REPO}:Q8_0"\n')
    result = run_cli("lock", "--json", env=env)
    assert result.exit_code == 0
    [report] = [e for e in result.json_lines() if e.get("event") == "report"]
    assert report["command"] == "lock"
    assert report["written"] is True
    [model] = report["models"]
    assert (model["name"], model["quant"], model["commit"], model["files"]) == (
        "tiny",
        "Q8_0",
        tiny,
        ["Tiny-Q8_0.gguf"],
    )


def test_profile_flag(run_cli: CliRunner, tiny: str, env: dict[str, str]) -> None:
    """--profile locks for one declared profile; an undeclared one exits 2 listing them."""
    manifest(f'[models.tiny]\nsource = "hf://{REPO}"\n')
    bad = run_cli("lock", "--profile", "huge", env=env)
    assert bad.exit_code == 2
    assert bad.stderr == (
        "modelsync: error: --profile huge: no [profiles.huge] in models.toml; "
        "declared profiles: big, small\n"
    )
    assert run_cli("lock", "--profile", "small", env=env).exit_code == 0
    text = Path("models.lock").read_text()
    assert 'name = "small"' in text
    assert 'name = "big"' not in text


def test_offline_cannot_resolve(run_cli: CliRunner) -> None:
    """--offline with models to resolve exits 2 and says to go online."""
    manifest('[models.x]\nsource = "org/x"\n')
    result = run_cli("lock", "--offline")
    assert result.exit_code == 2
    assert "--offline: x must be resolved against a registry" in result.stderr


def test_malformed_lock_exits_2_and_is_kept(run_cli: CliRunner) -> None:
    """A broken models.lock stops `lock` with file:line and is left as it was."""
    manifest('[models.x]\nsource = "org/x"\n')
    Path("models.lock").write_text('version = 1\nmanifest-digest = "nope"\n')
    result = run_cli("lock")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        'modelsync: error: models.lock:2: manifest-digest: expected "sha256:" and 64 hex digits'
    )
    assert Path("models.lock").read_text() == 'version = 1\nmanifest-digest = "nope"\n'


def test_unknown_upgrade_model(run_cli: CliRunner) -> None:
    """--upgrade-model with a name not in the manifest exits 2 listing the models."""
    manifest('[models.x]\nsource = "org/x"\n')
    result = run_cli("lock", "--upgrade-model", "y")
    assert result.exit_code == 2
    assert "--upgrade-model y: no such model in models.toml; models: x" in result.stderr
