"""Credentials for a blob remote as an unlucky user sets them: an AWS profile that does not
exist, named by `AWS_PROFILE` rather than by the remote's table."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_push import second_machine
from tests.fixtures.cli import CliRunner


def test_a_missing_aws_profile_is_named_in_one_line_by_push_and_sync(
    pushed_project: dict[str, str], run_cli: CliRunner, tmp_path: Path
) -> None:
    """`AWS_PROFILE=nope`: push exits 5 with one error line naming the profile, where it came
    from and how to fix it; sync warns once the same way and the registry serves."""
    env = {**pushed_project, "AWS_PROFILE": "nope"}
    push = run_cli("push", env=env)
    assert push.exit_code == 5
    [error] = [line for line in push.stderr.splitlines() if "error:" in line]
    assert "the AWS profile 'nope' (AWS_PROFILE) does not exist" in error
    assert "unset AWS_PROFILE" in error
    manifest, store = second_machine(tmp_path)
    sync = run_cli("-m", str(manifest), "--store", str(store), "sync", env=env)
    assert sync.exit_code == 0, sync.stderr
    [warning] = [line for line in sync.stderr.splitlines() if "remote team skipped" in line]
    assert "'nope' (AWS_PROFILE)" in warning
