"""Where things are: the manifest found from the current folder or a parent, `-m DIR`, the
target folder with `~` and `$VARS`, the `.gitignore` written there, `--frozen` with `--locked`,
and the sync summary naming what it removed, resumed and adopted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

WEIGHTS = bytes(range(256)) * 40
CONFIG = '{"arch": "tiny"}\n'


@pytest.fixture
def env(hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path) -> dict[str, str]:
    """org/tiny on the local hub as the implicit `hf` registry; caches with nothing to adopt."""
    hub_repo("org/tiny", {"weights.bin": WEIGHTS, "config.json": CONFIG})
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def write_manifest(folder: Path, *, settings: str = "", include: str = "*") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "models.toml"
    path.write_text(
        f'{settings}\n[models.tiny]\nsource = "hf://org/tiny"\ninclude = ["{include}"]\n'
    )
    return path


def error_line(stderr: str) -> str:
    """The error line among structured log lines."""
    return next(line for line in stderr.splitlines() if line.startswith("modelsync: error:"))


# ---- manifest discovery ------------------------------------------------------------------


def test_manifest_is_found_in_a_parent_folder(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from a subfolder without -m, sync uses the models.toml of a parent folder: the lock
    and the target land beside that manifest, not in the subfolder."""
    write_manifest(tmp_path / "proj")
    deep = tmp_path / "proj" / "src" / "app"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    result = run_cli("sync", env=env)
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "proj" / "models.lock").is_file()
    assert (tmp_path / "proj" / "models" / "tiny" / "weights.bin").read_bytes() == WEIGHTS
    assert sorted(p.name for p in deep.iterdir()) == []


def test_no_manifest_names_the_folders_searched(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without models.toml in the folder or any parent, a command exits 2 naming where it
    looked and the fix."""
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    result = run_cli("status")
    assert result.exit_code == 2
    assert result.stderr == (
        f"modelsync: error: no models.toml in {deep} or its parents; run `modelsync init` to "
        "create one here, or pass -m PATH\n"
    )


def test_manifest_flag_accepts_a_folder(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """`-m DIR` means DIR/models.toml, for every command, init included."""
    folder = tmp_path / "other"
    write_manifest(folder)
    assert run_cli("lock", "-m", str(folder), env=env).exit_code == 0
    assert (folder / "models.lock").is_file()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    init = run_cli("init", "-m", str(fresh))
    assert init.exit_code == 0, init.stderr
    assert (fresh / "models.toml").is_file()


def test_init_writes_here_even_below_a_project(
    run_cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init` never climbs to a parent's manifest: it writes into the current folder."""
    write_manifest(tmp_path / "proj")
    sub = tmp_path / "proj" / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    assert run_cli("init").exit_code == 0
    assert (sub / "models.toml").is_file()


# ---- flags -------------------------------------------------------------------------------


def test_frozen_with_locked_is_a_usage_error(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """`sync --frozen --locked` contradicts itself: exit 2, even with a stale lock, before any
    write."""
    write_manifest(tmp_path)
    assert run_cli("lock", env=env).exit_code == 0
    write_manifest(tmp_path, include="*.bin")
    result = run_cli("sync", "--frozen", "--locked", env=env)
    assert result.exit_code == 2
    assert error_line(result.stderr) == (
        "modelsync: error: --frozen and --locked contradict each other: --frozen uses "
        "models.lock as it is, --locked fails when it is stale; in CI use --locked alone"
    )
    assert not (tmp_path / "models").exists()


# ---- the target folder -------------------------------------------------------------------


def test_target_expands_home_and_variables(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """`~` is the user's home and `$NAME`/`${NAME}` come from the environment: no folder named
    `~` or `$MODELS_ROOT` appears under the project."""
    home = tmp_path / "home"
    shared = tmp_path / "shared"
    write_manifest(tmp_path, settings='[settings]\ntarget = "~/llm"\n')
    assert run_cli("sync", env={**env, "HOME": str(home)}).exit_code == 0
    assert (home / "llm" / "tiny" / "weights.bin").read_bytes() == WEIGHTS
    write_manifest(tmp_path, settings='[settings]\ntarget = "$MODELS_ROOT/${TEAM}-llm"\n')
    result = run_cli("sync", env={**env, "MODELS_ROOT": str(shared), "TEAM": "ml"})
    assert result.exit_code == 0, result.stderr
    assert (shared / "ml-llm" / "tiny" / "weights.bin").read_bytes() == WEIGHTS
    assert not (tmp_path / "~").exists()
    assert not (tmp_path / "$MODELS_ROOT").exists()


def test_undefined_target_variable_names_the_line_and_the_variable(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A target naming a variable that is not set stops sync and status (exit 2) at the
    manifest's line, naming the variable, before any write; `lock` does not need the target."""
    monkeypatch.delenv("MODELS_ROOT", raising=False)
    write_manifest(tmp_path, settings='[settings]\nlink = "auto"\ntarget = "$MODELS_ROOT/llm"\n')
    expected = (
        'modelsync: error: models.toml:3: settings.target: "$MODELS_ROOT/llm": environment '
        "variable MODELS_ROOT is not set; set MODELS_ROOT, or write the folder out in models.toml"
    )
    assert run_cli("lock", env=env).exit_code == 0
    for command in ("sync", "status"):
        result = run_cli(command, env=env)
        assert result.exit_code == 2
        assert error_line(result.stderr) == expected
    assert not StoreLayout(Path(os.environ["MODELSYNC_STORE"])).blobs_dir.exists()
    assert not (tmp_path / "$MODELS_ROOT").exists()
    assert not Path("/llm").exists()
