"""The examples in `examples/` work as written: every manifest locks against the local hub
(each source served there under its own name), the workflows are valid YAML running the
commands they promise, the systemd units pass `systemd-analyze verify`, and the crontab line
syncs (two overlapping runs included) without `flock`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pytest_httpserver import HTTPServer

from modelsync.lockfile.io import read_lock
from modelsync.manifest.load import load_manifest
from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import make_gguf_repo
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

EXAMPLES = Path(__file__).parents[2] / "examples"
MANIFESTS = sorted(EXAMPLES.glob("*/models.toml"))
WORKFLOWS = sorted(EXAMPLES.glob("github-actions/*.yml"))
MODELSYNC = str(Path(sys.executable).with_name("modelsync"))


def steps_run(workflow: dict[str, Any]) -> list[str]:
    """Every `run:` command of every job, in order."""
    return [
        str(step["run"])
        for job in workflow["jobs"].values()
        for step in job["steps"]
        if "run" in step
    ]


@pytest.fixture(scope="module")
def gguf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small GGUF repository's files, served under every GGUF source's name."""
    folder = tmp_path_factory.mktemp("gguf") / "Example"
    make_gguf_repo(folder, "Example", ("Q3_K_M", "Q4_K_M", "Q6_K", "Q8_0"))
    return folder


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.parent.name)
def test_example_manifest_locks_against_the_local_hub(  # noqa: PLR0917 - pytest fixtures
    path: Path,
    gguf_dir: Path,
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    run_cli: CliRunner,
    tmp_path: Path,
) -> None:
    """Serve each model's repository on the local hub (GGUF files, or files its globs match),
    point every registry at it, and `modelsync lock` writes a lock naming every model for
    every declared profile; `lock --check` then finds it fresh."""
    text = re.sub(r'endpoint = "[^"]*"', f'endpoint = "{hub.endpoint}"', path.read_text())
    project = tmp_path / "project"
    project.mkdir()
    (project / "models.toml").write_text(text)
    manifest = load_manifest(project / "models.toml")
    for model in manifest.models:
        assert model.repo is not None, model.name
        if model.include and not any(g.endswith(".gguf") for g in model.include):
            files: dict[str, bytes | Path] = {
                "model.safetensors": b"\0" * 4096,
                "config.json": b"{}",
                "tokenizer.txt": b"a b c",
            }
        else:
            files = {p.name: p for p in gguf_dir.iterdir()}
        hub_repo(model.repo, files)
    env = {"HF_ENDPOINT": hub.endpoint, "MODELS_DIR": str(tmp_path / "models")}
    result = run_cli("-m", str(project), "lock", env=env)
    assert result.exit_code == 0, result.stderr
    lock = read_lock(project / "models.lock")
    assert lock is not None
    assert {m.name for m in lock.models} == {m.name for m in manifest.models}
    assert {p.name for p in lock.profiles} == set(manifest.profiles)
    assert run_cli("-m", str(project), "lock", "--check", env=env).exit_code == 0


def test_workflows_are_yaml_running_the_promised_commands() -> None:
    """The CI workflow checks the lock, caches the store keyed by the lock and syncs
    `--locked`; the nightly one runs outdated, `lock --upgrade` and opens a pull request."""
    assert {p.name for p in WORKFLOWS} == {"models.yml", "upgrade-models.yml"}
    ci = yaml.safe_load((EXAMPLES / "github-actions" / "models.yml").read_text())
    runs = steps_run(ci)
    assert runs.index("modelsync lock --check") < runs.index("modelsync sync --locked")
    [job] = ci["jobs"].values()
    [cache] = [s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/cache@")]
    assert cache["with"]["path"] == "${{ env.MODELSYNC_STORE }}"
    assert "hashFiles('models.lock')" in cache["with"]["key"]
    assert "MODELSYNC_STORE" in job["env"]
    nightly = yaml.safe_load((EXAMPLES / "github-actions" / "upgrade-models.yml").read_text())
    assert nightly[True]["schedule"]  # YAML 1.1 reads the key `on` as True
    runs = steps_run(nightly)
    assert runs.index('modelsync outdated || [ "$?" -eq 3 ]') < runs.index(
        "modelsync lock --upgrade"
    )
    [job] = nightly["jobs"].values()
    [pr] = [s for s in job["steps"] if "create-pull-request" in str(s.get("uses", ""))]
    assert pr["with"]["add-paths"] == "models.lock"


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """The systemd units in a temp folder, ExecStart pointing at this venv's modelsync (so
    verify can check that the program exists)."""
    folder = tmp_path / "units"
    folder.mkdir()
    for unit in (EXAMPLES / "systemd").iterdir():
        text = unit.read_text().replace("/usr/local/bin/modelsync", MODELSYNC)
        (folder / unit.name).write_text(text)
    return folder


def test_systemd_units_verify(units: Path) -> None:
    """`systemd-analyze verify` accepts the service and its timer without a warning about
    them; the service runs a quiet, frozen sync with a bounded wait."""
    service = (units / "modelsync-sync.service").read_text()
    assert f"ExecStart={MODELSYNC} -q sync --frozen --wait-timeout " in service
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed here")
    files = sorted(str(p) for p in units.iterdir())
    result = subprocess.run(
        ["systemd-analyze", "verify", *files],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    about_ours = [line for line in result.stderr.splitlines() if str(units) in line]
    assert (result.returncode, about_ours) == (0, []), result.stderr


def test_crontab_line_syncs_even_when_two_runs_overlap(
    tiny_project: dict[str, str], run_cli: CliRunner, tmp_path: Path
) -> None:
    """The crontab's command, with the project, store and program paths of this test, run
    twice at once (a slow run overlapping the next): both exit 0 and print nothing (-q), and
    the files are in place; the line has five schedule fields and no flock."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    lines = [
        x
        for x in (EXAMPLES / "cron" / "crontab").read_text().splitlines()
        if x.strip() and not x.startswith("#")
    ]
    env_lines = [x for x in lines if re.fullmatch(r"[A-Z_]+=\S+", x)]
    [job] = [x for x in lines if x not in env_lines]
    fields = job.split(None, 5)
    for field in fields[:5]:
        assert re.fullmatch(r"[\d*/,-]+", field), job
    assert "flock" not in job
    command = (
        fields[5]
        .replace("/srv/app", str(Path.cwd()))
        .replace("/usr/local/bin/modelsync", MODELSYNC)
    )
    env = {**os.environ, **tiny_project}
    for line in env_lines:
        name, _ = line.split("=", 1)
        env[name] = str(tmp_path / "cron-store")
    runs = [
        subprocess.Popen(
            ["sh", "-c", command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in runs]
    assert results == [(0, "", ""), (0, "", "")]
    assert Path("models/tiny/weights.bin").stat().st_size == 5000


def test_upgrade_script_upgrades_when_upstream_moved_and_changes_nothing_when_down(
    tiny_project: dict[str, str],
    run_cli: CliRunner,
    hub_repo: HubRepoFactory,
    httpserver: HTTPServer,
) -> None:
    """`examples/cron/upgrade.sh` (bench and publish off): nothing moved is exit 0 with no
    change; after upstream moved it re-locks and syncs, its stdout naming the model's old → new
    commit and the sync; with the registry refusing it exits 5 and changes nothing."""
    assert run_cli("sync", env=tiny_project).exit_code == 0
    script = str(EXAMPLES / "cron" / "upgrade.sh")
    env = {**os.environ, **tiny_project, "MODELSYNC": MODELSYNC, "BENCH": "0", "PUBLISH": "0"}

    def upgrade(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", script], env={**env, **extra}, capture_output=True, text=True, check=False
        )

    lock = Path("models.lock").read_bytes()
    quiet = upgrade()
    assert (quiet.returncode, Path("models.lock").read_bytes()) == (0, lock), quiet.stderr
    new = hub_repo("org/tiny", {"weights.bin": b"v" * 6000}).commit
    moved = upgrade()
    assert moved.returncode == 0, moved.stderr
    assert "  changed tiny: " in moved.stdout
    assert f"→ {new[:7]}: 0 added, 0 removed, 1 changed, +1000 B; choice unchanged" in moved.stdout
    assert "synced 1 models" in moved.stdout
    assert Path("models/tiny/weights.bin").read_bytes() == b"v" * 6000
    httpserver.expect_request(re.compile("/.*")).respond_with_data("no", status=403)
    lock = Path("models.lock").read_bytes()
    down = upgrade(HF_ENDPOINT=httpserver.url_for("").rstrip("/"))
    assert down.returncode == 5, down.stderr
    assert Path("models.lock").read_bytes() == lock
    assert Path("models/tiny/weights.bin").read_bytes() == b"v" * 6000
