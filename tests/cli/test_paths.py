"""Where things are: the manifest found from the current folder or a parent, `-m DIR`, the
target folder with `~` and `$VARS`, the `.gitignore` written there, `--frozen` with `--locked`,
and the sync summary naming what it removed, resumed and adopted."""

from __future__ import annotations

import hashlib
import os
import subprocess
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
    """`-m DIR` means DIR/models.toml, for `lock` and `init` alike."""
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


# ---- .gitignore in the target --------------------------------------------------------------


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_first_sync_writes_a_gitignore_that_nothing_else_minds(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """In a git project, the first sync writes `models/.gitignore` (`*`), so `git add .` stages
    the manifest and lock but no model file; status stays clean, verify passes, gc leaves it."""
    git(tmp_path, "init", "-q")
    write_manifest(tmp_path)
    assert run_cli("sync", env=env).exit_code == 0
    ignore = tmp_path / "models" / ".gitignore"
    assert ignore.read_text().splitlines()[-1] == "*"
    git(tmp_path, "add", ".")
    staged = git(tmp_path, "diff", "--cached", "--name-only").split()
    assert "models.toml" in staged
    assert "models.lock" in staged
    assert not [name for name in staged if name.startswith("models/")]
    assert run_cli("status", env=env).exit_code == 0
    assert run_cli("verify", env=env).exit_code == 0
    gc = run_cli("gc", "--dry-run", env=env)
    assert gc.exit_code == 0
    assert ".gitignore" not in gc.stdout
    assert run_cli("gc", env=env).exit_code == 0
    assert ignore.read_text().splitlines()[-1] == "*"


def test_gitignore_is_never_overwritten_nor_written_twice(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """An existing `.gitignore` in the target is left as it is; one the user deleted after the
    first sync is not written again."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / ".gitignore").write_text("*.tmp\n")
    write_manifest(tmp_path, include="config.json")
    assert run_cli("sync", env=env).exit_code == 0
    assert (tmp_path / "models" / ".gitignore").read_text() == "*.tmp\n"
    (tmp_path / "models" / ".gitignore").unlink()
    write_manifest(tmp_path)
    assert run_cli("sync", env=env).exit_code == 0
    assert (tmp_path / "models" / "tiny" / "weights.bin").read_bytes() == WEIGHTS
    assert not (tmp_path / "models" / ".gitignore").exists()


def test_no_gitignore_where_git_tracks_files_or_settings_say_no(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """A target whose files git already tracks gets no `.gitignore`, nor does one with
    `settings.gitignore = false`."""
    tracked = tmp_path / "tracked"
    (tracked / "models").mkdir(parents=True)
    (tracked / "models" / "README.md").write_text("our models\n")
    git(tracked, "init", "-q")
    git(tracked, "add", ".")
    write_manifest(tracked)
    assert run_cli("sync", "-m", str(tracked), env=env).exit_code == 0
    assert (tracked / "models" / "tiny" / "weights.bin").read_bytes() == WEIGHTS
    assert not (tracked / "models" / ".gitignore").exists()
    off = tmp_path / "off"
    write_manifest(off, settings="[settings]\ngitignore = false\n")
    assert run_cli("sync", "-m", str(off), env=env).exit_code == 0
    assert (off / "models" / "tiny" / "weights.bin").read_bytes() == WEIGHTS
    assert not (off / "models" / ".gitignore").exists()


# ---- the summary names files ---------------------------------------------------------------


def test_summary_names_removed_resumed_and_adopted_files(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """After the counts, the summary names each file removed, each download resumed from an
    earlier run's partial and each file adopted from a local cache; --json carries the same."""
    write_manifest(tmp_path, include="config.json")
    assert run_cli("sync", env=env).exit_code == 0
    store = StoreLayout(Path(os.environ["MODELSYNC_STORE"]))
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    partial = store.partial_name(hashlib.sha256(WEIGHTS).hexdigest(), "999-dead")
    (store.tmp_dir / partial).write_bytes(WEIGHTS[:4000])
    write_manifest(tmp_path, include="weights.bin")
    resumed = run_cli("sync", "--json", env=env)
    assert resumed.exit_code == 0, resumed.stderr
    report = resumed.json_lines()[-1]
    assert report["resumed"] == [{"file": "tiny/weights.bin", "bytes": 4000}]
    assert report["removed"] == ["tiny/config.json"]
    hf_blobs = tmp_path / "hf" / "models--org--tiny" / "blobs"
    hf_blobs.mkdir(parents=True)
    (hf_blobs / hashlib.sha256(CONFIG.encode()).hexdigest()).write_text(CONFIG)
    write_manifest(tmp_path, include="config.json")
    fresh_store = str(tmp_path / "store2")
    adopted = run_cli(
        "sync", "--store", fresh_store, env={**env, "HF_HUB_CACHE": str(hf_blobs.parents[1])}
    )
    assert adopted.exit_code == 0, adopted.stderr
    assert adopted.stdout.splitlines()[2:] == [
        "  adopted tiny/config.json (from huggingface)",
        "  removed tiny/weights.bin",
    ]
