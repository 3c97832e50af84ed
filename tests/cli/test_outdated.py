"""`outdated` end to end against the local hub: exit 0 when nothing moved, 3 with what moved
(commit, date, files, size, the choice per profile), 5 when the registry is down; nothing is
ever written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliResult, CliRunner
from tests.fixtures.hub import HubRepoFactory
from tests.fixtures.projects import TINY_WEIGHTS


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
