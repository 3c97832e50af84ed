"""A locked commit the registry no longer has is exit 5 (design.md section 2), in one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner

GONE = "0123456789abcdef0123456789abcdef01234567"


def _lock_then_lose_the_commit(run_cli: CliRunner, env: dict[str, str]) -> str:
    """Lock the tiny project, point its entry at a commit the hub never had, and change the
    model's entry so `lock` must resolve it again at the locked commit; returns the old commit."""
    assert run_cli("lock", env=env).exit_code == 0
    lock = Path("models.lock")
    text = lock.read_text()
    match = re.search(r'commit = "([0-9a-f]{40})"', text)
    assert match is not None
    lock.write_text(text.replace(match.group(1), GONE))
    manifest = Path("models.toml")
    manifest.write_text(manifest.read_text().replace('include = ["*"]', 'include = ["*.bin"]'))
    return match.group(1)


@pytest.mark.parametrize("command", ["lock", "sync"])
def test_vanished_locked_commit_is_exit_5(
    run_cli: CliRunner, tiny_project: dict[str, str], command: str
) -> None:
    """`lock` (and `sync`, which re-locks the stale lock) of a model whose locked commit the
    registry no longer has exits 5 with one line naming the repo, the commit and the fix."""
    _lock_then_lose_the_commit(run_cli, tiny_project)
    result = run_cli(command, env=tiny_project)
    assert result.exit_code == 5, result.stderr
    expected = (
        f"modelsync: error: hf:org/tiny no longer has the locked commit {GONE}; "
        "run `modelsync lock --upgrade-model tiny` to pin a current one"
    )
    assert [line for line in result.stderr.splitlines() if "error" in line] == [expected]
    assert GONE in Path("models.lock").read_text()  # nothing written
