"""`modelsync sync` on the command line: summaries, --dry-run, --frozen/--locked, bad locks,
unsafe paths, a busy store, --offline, conflicts and --json, against the local Hub server."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from modelsync.lockfile.io import read_lock
from modelsync.lockfile.render import render_lock
from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory, RepoRef

WEIGHTS = bytes(range(256)) * 1000
CONFIG = '{"arch": "tiny"}\n'


@pytest.fixture
def repo(hub_repo: HubRepoFactory) -> RepoRef:
    """org/tiny: one LFS file and one small text file."""
    return hub_repo("org/tiny", {"weights.bin": WEIGHTS, "config.json": CONFIG})


@pytest.fixture
def env(hub: ServerHandle, tmp_path: Path) -> dict[str, str]:
    """The hub as the implicit `hf` registry; caches that hold nothing to adopt."""
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


@pytest.fixture
def manifest(repo: RepoRef, cli_env: dict[str, str]) -> Path:
    """models.toml in the current directory (the test's tmp dir) with model `tiny`."""
    assert cli_env  # the working directory is the test's own
    path = Path("models.toml")
    path.write_text(f'[models.tiny]\nsource = "hf://{repo.repo_id}"\ninclude = ["*"]\n')
    return path


def stderr_error(text: str) -> str:
    """The error line among structured log lines."""
    return next(line for line in text.splitlines() if line.startswith("modelsync: error:"))


@pytest.mark.usefixtures("manifest")
def test_sync_then_nothing_to_do(
    run_cli: CliRunner, env: dict[str, str], hub: ServerHandle
) -> None:
    """The first sync re-locks, fetches and places, saying how; the second says nothing to do
    and sends no request."""
    first = run_cli("sync", env=env)
    assert first.exit_code == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == "re-locked models.lock first (it was stale)"
    assert lines[1].startswith(
        "synced 1 models (profile -: the lock names no profile): 2 files fetched (250.0 KiB"
    )
    assert lines[1].endswith(", 0 adopted, 2 placed (hardlink), 0 removed, 0 unchanged")
    assert Path("models/tiny/weights.bin").read_bytes() == WEIGHTS
    requests = hub.repos.counters.requests()
    second = run_cli("sync", env=env)
    assert second.stdout == (
        f"nothing to do: 1 models, 2 files up to date in {Path.cwd() / 'models'} "
        "(profile -: the lock names no profile; hardlink)\n"
    )
    assert hub.repos.counters.requests() == requests


@pytest.mark.usefixtures("manifest")
def test_json_report(run_cli: CliRunner, env: dict[str, str]) -> None:
    """With --json the last line is the sync report with counts, the profile and the link mode."""
    result = run_cli("sync", "--json", env=env)
    assert result.exit_code == 0
    report = result.json_lines()[-1]
    assert report["event"] == "report"
    assert report["command"] == "sync"
    assert (report["fetched"], report["placed"], report["removed"]) == (2, 2, [])
    assert report["bytes_fetched"] == len(WEIGHTS) + len(CONFIG)
    assert report["link_mode"] == "hardlink"
    assert report["profile"] is None
    assert report["plan"]["bytes_to_fetch"] == len(WEIGHTS) + len(CONFIG)


@pytest.mark.usefixtures("manifest")
def test_dry_run_prints_the_plan_and_changes_nothing(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """`sync --dry-run` lists what it would fetch and place with the bytes, and writes nothing."""
    assert run_cli("lock", env=env).exit_code == 0
    result = run_cli("sync", "--dry-run", env=env)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "  fetch   tiny/config.json (17 B)",
        "  fetch   tiny/weights.bin (250.0 KiB)",
        "  place   tiny/config.json (missing)",
        "  place   tiny/weights.bin (missing)",
        (
            "would sync 1 models, profile -: the lock names no profile: "
            "2 files to fetch (250.0 KiB), 2 to place, 0 to remove, 0 unchanged"
        ),
    ]
    assert not Path("models").exists()
    assert not StoreLayout(Path(os.environ["MODELSYNC_STORE"])).blobs_dir.exists()


@pytest.mark.usefixtures("manifest")
def test_frozen_without_a_lock_exits_2(run_cli: CliRunner, env: dict[str, str]) -> None:
    """`--frozen` never resolves: without models.lock it stops with the fix."""
    result = run_cli("sync", "--frozen", env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        "modelsync: error: models.lock: not found; run `modelsync lock` "
        "(or `modelsync sync` without --frozen)\n"
    )


@pytest.mark.usefixtures("manifest")
def test_locked_with_a_stale_lock_exits_3(run_cli: CliRunner, env: dict[str, str]) -> None:
    """`--locked` refuses a lock made from another models.toml."""
    assert run_cli("lock", env=env).exit_code == 0
    with Path("models.toml").open("a") as handle:
        handle.write("context = 1024\n")
    result = run_cli("sync", "--locked", env=env)
    assert result.exit_code == 3
    assert result.stderr == (
        "modelsync: error: models.lock is stale: models.toml changed since the lock was written; "
        "run `modelsync lock` and commit it (or `modelsync sync` without --locked)\n"
    )
    assert not Path("models").exists()


@pytest.mark.usefixtures("manifest")
def test_tampered_lock_exits_2_naming_the_line(run_cli: CliRunner, env: dict[str, str]) -> None:
    """A lock whose digest was edited into nonsense, or that was cut short, stops before any
    write, naming the file and line."""
    assert run_cli("lock", env=env).exit_code == 0
    text = Path("models.lock").read_text()
    lines = text.splitlines()
    number = next(i for i, line in enumerate(lines, 1) if line.startswith("sha256 = "))
    lines[number - 1] = 'sha256 = "not-a-digest"'
    Path("models.lock").write_text("\n".join(lines) + "\n")
    tampered = run_cli("sync", env=env)
    assert tampered.exit_code == 2
    assert tampered.stderr == (
        f"modelsync: error: models.lock:{number}: model.file.sha256: expected 64 lowercase hex "
        "digits; run `modelsync lock` to regenerate it (or restore it from git)\n"
    )
    Path("models.lock").write_text(text[: text.index("[[model.file]]") + 20])
    truncated = run_cli("sync", env=env)
    assert truncated.exit_code == 2
    assert stderr_error(truncated.stderr).startswith("modelsync: error: models.lock:")
    assert not Path("models").exists()


@pytest.mark.usefixtures("manifest")
def test_lock_paths_escaping_the_target_are_refused_before_any_write(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """A lock whose model name climbs out of the target dir is refused (exit 2), and so is a
    file path with `..` (naming the line); nothing is fetched or written."""
    assert run_cli("lock", env=env).exit_code == 0
    lock = read_lock(Path("models.lock"))
    assert lock is not None
    evil = replace(lock, models=(replace(lock.models[0], name=".."),))
    Path("models.lock").write_text(render_lock(evil))
    result = run_cli("sync", "--frozen", env=env)
    assert result.exit_code == 2
    assert stderr_error(result.stderr) == (
        "modelsync: error: models.lock: model name '..' is not a safe folder name; refusing to "
        "write anything; restore models.lock from git or run `modelsync lock` to regenerate it"
    )
    text = render_lock(lock).replace('path = "weights.bin"', 'path = "../../escape.bin"')
    Path("models.lock").write_text(text)
    climbing = run_cli("sync", "--frozen", env=env)
    assert climbing.exit_code == 2
    assert "model.file.path: unsafe path '../../escape.bin'" in climbing.stderr
    assert not Path("models").exists()
    assert not (tmp_path / "escape.bin").exists()
    assert not StoreLayout(Path(os.environ["MODELSYNC_STORE"])).blobs_dir.exists()


@pytest.mark.usefixtures("manifest")
def test_symlinked_model_folder_leading_outside_is_refused(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """A model folder that is a symlink out of the target dir is refused, naming both."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Path("models").mkdir()
    Path("models/tiny").symlink_to(elsewhere)
    result = run_cli("sync", env=env)
    assert result.exit_code == 2
    assert stderr_error(result.stderr) == (
        f"modelsync: error: {Path.cwd() / 'models' / 'tiny'}: leads to {elsewhere}, outside the "
        f"target dir {Path.cwd() / 'models'}; refusing to place tiny/config.json through it; "
        "remove that symlink (or point settings.target at the other disk)"
    )
    assert list(elsewhere.iterdir()) == []


@pytest.mark.usefixtures("manifest")
def test_busy_store_with_no_wait_exits_6(run_cli: CliRunner, env: dict[str, str]) -> None:
    """While another run holds the store, `--no-wait` exits 6 naming the holder."""
    assert run_cli("lock", env=env).exit_code == 0
    store = Path(os.environ["MODELSYNC_STORE"])
    with exclusive(StoreLayout(store).lock_path, wait=False):
        result = run_cli("sync", "--no-wait", env=env)
    assert result.exit_code == 6
    assert stderr_error(result.stderr).startswith(
        f"modelsync: error: {store / 'store.lock'}: held by pid {os.getpid()} ("
    )
    assert stderr_error(result.stderr).endswith(
        "wait for it to finish, or run again without --no-wait to queue behind it"
    )


@pytest.mark.usefixtures("manifest")
def test_offline_names_what_must_be_downloaded_and_a_no_op_works_offline(
    run_cli: CliRunner, env: dict[str, str], hub: ServerHandle
) -> None:
    """Offline, a sync that needs bytes exits 5 naming each missing file; once synced, a sync
    with HF_HUB_OFFLINE=1 succeeds without any request."""
    assert run_cli("lock", env=env).exit_code == 0
    offline = run_cli("sync", "--offline", env=env)
    assert offline.exit_code == 5
    assert stderr_error(offline.stderr) == (
        "modelsync: error: --offline: 2 files are in no local cache and must be downloaded: "
        "tiny/config.json (17 B), tiny/weights.bin (250.0 KiB); run `modelsync sync` without "
        "--offline (and without HF_HUB_OFFLINE=1)"
    )
    assert run_cli("sync", env=env).exit_code == 0
    requests = hub.repos.counters.requests()
    again = run_cli("sync", env={**env, "HF_HUB_OFFLINE": "1"})
    assert again.exit_code == 0
    assert again.stdout.startswith("nothing to do")
    assert hub.repos.counters.requests() == requests


@pytest.mark.usefixtures("manifest")
def test_users_file_at_a_target_path_is_a_conflict_never_overwritten(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """A file the user put where a locked file goes: sync exits 3 naming it before it changes
    anything (the rest is not placed either); `--repair` replaces it."""
    Path("models/tiny").mkdir(parents=True)
    mine = Path("models/tiny/config.json")
    mine.write_text("my config")
    result = run_cli("sync", env=env)
    assert result.exit_code == 3
    digest = hashlib.sha256(CONFIG.encode()).hexdigest()
    assert stderr_error(result.stderr) == (
        "modelsync: error: 1 target files hold other bytes than models.lock and were not "
        f"overwritten: {mine.absolute()} (not placed by modelsync: expected 17 bytes, sha256 "
        f"{digest}; found 9 bytes); move your files away, or run `modelsync sync --repair` to "
        "replace them"
    )
    assert mine.read_text() == "my config"
    assert not Path("models/tiny/weights.bin").exists()
    assert run_cli("sync", "--repair", env=env).exit_code == 0
    assert mine.read_text() == CONFIG
    assert Path("models/tiny/weights.bin").read_bytes() == WEIGHTS


@pytest.mark.usefixtures("manifest")
def test_unknown_profile_and_model_exit_2(run_cli: CliRunner, env: dict[str, str]) -> None:
    """`--profile` and `--model` must name what the lock has."""
    assert run_cli("lock", env=env).exit_code == 0
    profile = run_cli("sync", "--profile", "gpu", env=env)
    assert profile.exit_code == 2
    assert profile.stderr == (
        "modelsync: error: --profile gpu: models.lock has no such profile; profiles in the lock: "
        "none; or run `modelsync lock --profile gpu`\n"
    )
    model = run_cli("sync", "--model", "nope", env=env)
    assert model.exit_code == 2
    assert (
        model.stderr
        == "modelsync: error: --model nope: not in models.lock; models in the lock: tiny\n"
    )


@pytest.mark.usefixtures("manifest")
def test_dry_run_never_relocks(run_cli: CliRunner, env: dict[str, str]) -> None:
    """A dry run with a stale lock plans from it as it is, says it is stale, rewrites nothing."""
    assert run_cli("lock", env=env).exit_code == 0
    before = Path("models.lock").read_bytes()
    with Path("models.toml").open("a") as handle:
        handle.write("context = 1024\n")
    result = run_cli("sync", "--dry-run", env=env)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == (
        "note: models.lock is stale (models.toml changed since the lock was written); "
        "sync would re-lock"
    )
    assert Path("models.lock").read_bytes() == before
