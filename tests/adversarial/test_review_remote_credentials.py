"""Credentials for a blob remote as an unlucky user sets them: an AWS profile that does not
exist, named by `AWS_PROFILE` rather than by the remote's table."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from tests.cli.test_push import second_machine
from tests.fixtures.cli import CliRunner
from tests.fixtures.s3 import S3Bucket


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


def test_an_endpoint_from_the_aws_environment_must_be_https_too(
    tiny_project: dict[str, str], s3_bucket: S3Bucket, run_cli: CliRunner
) -> None:
    """With no endpoint-url in the table, boto3 takes AWS_ENDPOINT_URL (or the profile's
    endpoint_url): one that is plain http to another machine is refused like the table's
    (push exits 2 naming the variable and sends nothing; sync warns and the registry serves)."""
    table = f'[remotes.team]\ntype = "s3"\nbucket = "{s3_bucket.name}"\n'
    Path("models.toml").write_text(Path("models.toml").read_text() + table)
    port = urlsplit(s3_bucket.server.endpoint).port
    # 0.0.0.0 reaches this machine's listeners on Linux, yet is not a loopback address.
    env = {**tiny_project, **s3_bucket.env, "AWS_ENDPOINT_URL": f"http://0.0.0.0:{port}"}
    sync = run_cli("sync", env=env)
    assert sync.exit_code == 0, sync.stderr
    [warning] = [line for line in sync.stderr.splitlines() if "remote team skipped" in line]
    assert "AWS_ENDPOINT_URL" in warning
    push = run_cli("push", env=env)
    assert push.exit_code == 2, push.stderr
    [error] = [line for line in push.stderr.splitlines() if "error:" in line]
    assert f"http://0.0.0.0:{port}" in error
    assert "https" in error
    assert s3_bucket.objects() == {}
