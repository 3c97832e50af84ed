"""`outdated` end to end against the local hub: exit 0 when nothing moved, 3 with what moved
(commit, date, files, size, the choice per profile), 5 when the registry is down; nothing is
ever written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from modelsync.errors import ExitCode, RemoteError
from modelsync.net.retry import RetryPolicy
from modelsync.ops.lock import LockRequest, lock_project
from modelsync.ops.outdated import OutdatedRequest, check_outdated
from modelsync.server.runner import ServerHandle
from modelsync.testing.gguf_files import ModelOptions, write_gguf
from modelsync.units import human_bytes
from tests.fixtures.cli import CliResult, CliRunner
from tests.fixtures.hub import FileSource, HubFactory, HubRepoFactory
from tests.fixtures.projects import TINY_WEIGHTS

FAST = RetryPolicy(attempts=2, base_delay=0.01, jitter=0.0)


def last_report(result: CliResult) -> dict[str, Any]:
    """The `report` object of a `--json` run (events come before it)."""
    [report] = [e for e in result.json_lines() if e["event"] == "report"]
    return report


def test_nothing_moved_is_exit_0_with_one_request(
    run_cli: CliRunner, tiny_project: dict[str, str]
) -> None:
    """A lock whose commit is still the head: exit 0, one line per model, one request."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    commit = re.findall(r'commit = "([0-9a-f]{40})"', Path("models.lock").read_text())[0]
    result = run_cli("outdated", env=tiny_project)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"tiny: up to date @ {commit[:7]}"
    report = last_report(run_cli("outdated", "--json", env=tiny_project))
    assert (report["exit_code"], report["requests"]) == (0, 1)
    assert report["models"][0]["moved"] is False


def test_moved_is_exit_3_naming_commits_date_files_and_size(
    run_cli: CliRunner, tiny_project: dict[str, str], hub_repo: HubRepoFactory
) -> None:
    """Upstream changes one file and adds one: exit 3, old → new commit with its date, the
    files added and changed and the size delta; models.lock is left as it was."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    before = Path("models.lock").read_bytes()
    old = re.findall(r'commit = "([0-9a-f]{40})"', before.decode())[0]
    new = hub_repo("org/tiny", {"weights.bin": TINY_WEIGHTS + b"x" * 1000, "extra.txt": "x"})
    result = run_cli("outdated", env=tiny_project)
    assert result.exit_code == 3, result.stderr
    line = result.stdout.splitlines()[0]
    assert re.fullmatch(
        rf"tiny: {old[:7]} → {new.commit[:7]} \(\d{{4}}-\d\d-\d\d \d\d:\d\d UTC\): "
        r"1 added, 0 removed, 1 changed, \+1001 B; -: 2 files → 3 files",
        line,
    ), line
    report = last_report(run_cli("outdated", "--json", env=tiny_project))
    assert report["exit_code"] == 3
    [model] = report["models"]
    assert (model["commit"], model["upstream"], model["moved"]) == (old, new.commit, True)
    assert model["change"]["added"] == ["extra.txt"]
    assert model["change"]["changed"] == ["weights.bin"]
    assert model["change"]["size_delta"] == 1001
    assert Path("models.lock").read_bytes() == before


MID = ModelOptions(n_embd=512, n_ff=1024, n_layers=4, n_head=8, n_head_kv=2, context_length=8192)
GPU_PROFILES = """
[profiles.gpu]
ram = "1GiB"
vram = "1652MiB"
[profiles.laptop]
ram = "1GiB"
"""


def mid_files(folder: Path, quants: tuple[str, ...]) -> dict[str, FileSource]:
    """One synthetic 4-layer GGUF file per quant (the same model as tests/integration's Mid)."""
    folder.mkdir(exist_ok=True)
    return {
        f"Mid-{q}.gguf": write_gguf(folder / f"Mid-{q}.gguf", quant=q, name="Mid", **MID)
        for q in quants
    }


def test_new_commit_with_a_better_fitting_quant_changes_one_profiles_choice(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """The new commit adds Q5_K_M, which fits the GPU profile fully where Q6_K does not: that
    profile's choice would change Q4_K_M → Q5_K_M; the RAM-only profile keeps Q8_0."""
    files = mid_files(tmp_path / "gguf", ("Q4_K_M", "Q6_K", "Q8_0", "Q5_K_M"))
    q5 = files.pop("Mid-Q5_K_M.gguf")
    old = hub_repo("org/Mid-GGUF", files)
    Path("models.toml").write_text(GPU_PROFILES + '[models.mid]\nsource = "hf://org/Mid-GGUF"\n')
    env = {"HF_ENDPOINT": hub.endpoint}
    assert run_cli("lock", env=env).exit_code == 0
    lock = Path("models.lock").read_text()
    assert 'quant = "Q4_K_M"' in lock
    assert 'quant = "Q8_0"' in lock
    new = hub_repo("org/Mid-GGUF", {"Mid-Q5_K_M.gguf": q5})
    result = run_cli("outdated", env=env)
    assert result.exit_code == 3, result.stderr
    size = human_bytes(q5.stat().st_size - files["Mid-Q4_K_M.gguf"].stat().st_size)  # type: ignore[union-attr]
    assert result.stdout.splitlines()[0].endswith(
        f": 1 added, 1 removed, 0 changed, +{size}; gpu: Q4_K_M → Q5_K_M"
    ), result.stdout
    report = last_report(run_cli("outdated", "--json", env=env))
    choices = report["models"][0]["change"]["choices"]
    assert choices == [
        {"profile": "gpu", "old": "Q4_K_M", "new": "Q5_K_M", "changed": True},
        {"profile": "laptop", "old": "Q8_0", "new": "Q8_0", "changed": False},
    ]
    assert (report["models"][0]["commit"], report["models"][0]["upstream"]) == (
        old.commit,
        new.commit,
    )
    assert Path("models.lock").read_text() == lock


def test_model_filter_asks_only_that_model(
    run_cli: CliRunner, tiny_project: dict[str, str], hub_repo: HubRepoFactory
) -> None:
    """`--model NAME` checks only that model: the other one moved, this one did not (exit 0);
    an unknown name is exit 2 naming the models."""
    hub_repo("org/other", {"a.bin": b"a"})
    with Path("models.toml").open("a") as manifest:
        manifest.write('[models.other]\nsource = "hf://org/other"\ninclude = ["*"]\n')
    assert run_cli("lock", env=tiny_project).exit_code == 0
    hub_repo("org/other", {"a.bin": b"b"})
    assert run_cli("outdated", env=tiny_project).exit_code == 3
    only = last_report(run_cli("outdated", "--json", "--model", "tiny", env=tiny_project))
    assert (only["exit_code"], only["requests"]) == (0, 1)
    assert [m["name"] for m in only["models"]] == ["tiny"]
    unknown = run_cli("outdated", "--model", "nope", env=tiny_project)
    assert unknown.exit_code == 2
    assert "--model nope: no such model" in unknown.stderr


def test_registry_refusing_is_exit_5_with_its_line(
    run_cli: CliRunner, tiny_project: dict[str, str], httpserver: HTTPServer
) -> None:
    """A registry that refuses (403) is exit 5 with one error line naming it; nothing written."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    before = Path("models.lock").read_bytes()
    httpserver.expect_request(re.compile("/.*")).respond_with_data("no", status=403)
    down = {**tiny_project, "HF_ENDPOINT": httpserver.url_for("").rstrip("/")}
    # HF_ENDPOINT is not part of the lock's inputs: the lock stays fresh, the registry moved.
    result = run_cli("outdated", env=down)
    assert result.exit_code == 5, result.stderr
    assert result.stdout.splitlines()[0].startswith("tiny: could not check @ ")
    [error] = [line for line in result.stderr.splitlines() if "error" in line]
    assert "refused access to hf:org/tiny (403)" in error
    assert Path("models.lock").read_bytes() == before


def test_stopped_registry_is_exit_5_and_lock_upgrade_changes_nothing(
    hub: ServerHandle, hub_factory: HubFactory, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """Two registries; upstream moves on one and the other's server is stopped: `outdated`
    reports the move and the failure and exits 5; `lock --upgrade` exits 5 and leaves
    models.lock as it was."""
    (tmp_path / "corp-root").mkdir()
    corp = hub_factory(root=tmp_path / "corp-root")
    HubRepoFactory(corp)("org/down", {"a.bin": b"a"})
    hub_repo("org/up", {"a.bin": b"a"})
    manifest = tmp_path / "p" / "models.toml"
    manifest.parent.mkdir()
    manifest.write_text(
        f'[registries.corp]\ntype = "huggingface"\nendpoint = "{corp.endpoint}"\n'
        '[models.up]\nsource = "hf://org/up"\ninclude = ["*"]\n'
        '[models.down]\nsource = "corp://org/down"\ninclude = ["*"]\n'
    )
    env = {"HF_ENDPOINT": hub.endpoint}
    asyncio.run(lock_project(LockRequest(manifest=manifest, environ=env, retry=FAST)))
    before = manifest.with_name("models.lock").read_bytes()
    hub_repo("org/up", {"a.bin": b"b"})
    corp.close()
    request = OutdatedRequest(manifest=manifest, environ=env, retry=FAST)
    report = asyncio.run(check_outdated(request))
    assert report.exit_code == ExitCode.REMOTE
    status = {m.name: m for m in report.models}
    assert status["up"].moved
    error = status["down"].error
    assert isinstance(error, RemoteError)
    assert corp.endpoint in error.one_line()
    upgrade = LockRequest(manifest=manifest, environ=env, retry=FAST, upgrade=True)
    with pytest.raises(RemoteError):
        asyncio.run(lock_project(upgrade))
    assert manifest.with_name("models.lock").read_bytes() == before


def test_lock_upgrade_names_what_moved(
    run_cli: CliRunner, tiny_project: dict[str, str], hub_repo: HubRepoFactory
) -> None:
    """`lock --upgrade` after upstream moved prints the same comparison as `outdated` did,
    and `outdated` then finds nothing (exit 0); a second upgrade names no change."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    old = re.findall(r'commit = "([0-9a-f]{40})"', Path("models.lock").read_text())[0]
    new = hub_repo("org/tiny", {"config.json": '{"a": 1}'}).commit
    upgraded = run_cli("lock", "--upgrade", env=tiny_project)
    assert upgraded.exit_code == 0, upgraded.stderr
    assert (
        f"  changed tiny: {old[:7]} → {new[:7]}: 0 added, 0 removed, 1 changed, +6 B; "
        "choice unchanged"
    ) in upgraded.stdout.splitlines()
    assert run_cli("outdated", env=tiny_project).exit_code == 0
    again = last_report(run_cli("lock", "--upgrade", "--json", env=tiny_project))
    assert again["changes"] == []


def test_stale_lock_is_exit_3_without_a_request(
    run_cli: CliRunner, tiny_project: dict[str, str], hub: ServerHandle
) -> None:
    """A lock that no longer says what models.toml asks for is exit 3 naming `lock`, before
    asking any registry (comparing it with upstream would answer the wrong question)."""
    assert run_cli("lock", env=tiny_project).exit_code == 0
    manifest = Path("models.toml")
    manifest.write_text(manifest.read_text().replace('include = ["*"]', 'include = ["*.bin"]'))
    sent = hub.repos.counters.requests()
    result = run_cli("outdated", env=tiny_project)
    assert result.exit_code == 3
    assert result.stderr == (
        "modelsync: error: models.lock is stale: models.toml changed since the lock was "
        "written; run `modelsync lock` (or `modelsync lock --upgrade`) first\n"
    )
    assert hub.repos.counters.requests() == sent
