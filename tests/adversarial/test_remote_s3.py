"""Attacks on the blob remote: bytes that are not the blob, credentials that must never show,
a remote that refuses, hostile names in `[remotes.*]`, and the cost of merely declaring one.
The remote is moto's S3 server as a real process (tests/fixtures/s3.py)."""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest

from modelsync.store.layout import StoreLayout
from tests.adversarial.test_cli_idle_imports import loaded_by
from tests.cli.test_push import (
    WEIGHTS_SHA,
    events,
    second_machine,
    weights_key,
)
from tests.fixtures.cli import CliResult, CliRunner
from tests.fixtures.projects import TINY_WEIGHTS
from tests.fixtures.raw import raw_http_server
from tests.fixtures.s3 import S3Bucket, S3Server, aws_env, make_bucket

CANARY = "MODELSYNC-CANARY-SECRET-0123456789abcdef"
SIGNED = re.compile(r"X-Amz-(Signature|Credential)|Signature=", re.IGNORECASE)


def all_output(result: CliResult) -> str:
    return result.stdout + result.stderr


def test_a_corrupt_object_on_the_remote_is_not_admitted_and_the_registry_serves_the_blob(
    pushed_project: dict[str, str], run_cli: CliRunner, tmp_path: Path, s3_bucket: S3Bucket
) -> None:
    """Other bytes under a blob's key (same size) are dropped after hashing, named in a
    `remote.corrupt` event, and the blob comes from the registry: exit 0, not 4."""
    assert run_cli("push", env=pushed_project).exit_code == 0
    s3_bucket.put(weights_key(), b"X" * len(TINY_WEIGHTS))
    manifest, store = second_machine(tmp_path)
    result = run_cli(
        "-m", str(manifest), "--store", str(store), "sync", "--json", env=pushed_project
    )
    assert result.exit_code == 0, result.stdout
    corrupt = events(result, "remote.corrupt")
    assert [(e["remote"], e["blob"]) for e in corrupt] == [("team", WEIGHTS_SHA)]
    done = {e["file"]: e.get("remote") for e in events(result, "fetch.done")}
    assert done["tiny/weights.bin"] is None  # from the registry
    blob = StoreLayout(store).blob_path(WEIGHTS_SHA)
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == WEIGHTS_SHA
    assert (manifest.parent / "models/tiny/weights.bin").read_bytes() == TINY_WEIGHTS


def test_push_with_a_wrong_secret_exits_5_and_never_prints_it(
    tiny_project: dict[str, str], moto_auth: S3Server, run_cli: CliRunner, tmp_path: Path
) -> None:
    """A server that checks signatures refuses the push: exit 5, one error line naming the
    remote and the variables to set; the secret and the session token appear nowhere, in
    human, `-v` or `--json` output."""
    bucket = make_bucket(moto_auth, tmp_path)
    Path("models.toml").write_text(Path("models.toml").read_text() + bucket.remote_toml())
    env = {
        **tiny_project,
        **aws_env(tmp_path, moto_auth.access_key, CANARY),
        "AWS_SESSION_TOKEN": CANARY + "-session",
    }
    assert run_cli("sync", env=tiny_project).exit_code == 0
    for flags in ((), ("-v",), ("--json",), ("-v", "--json")):
        result = run_cli(*flags, "push", env=env)
        assert result.exit_code == 5, (flags, result.stdout, result.stderr)
        assert CANARY not in all_output(result), flags
        assert not SIGNED.search(all_output(result)), flags
    result = run_cli("push", env=env)
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert "remote team" in errors[0]
    assert "AWS_SECRET_ACCESS_KEY" in errors[0]
    assert bucket.objects() == {}


def test_the_right_key_passes_the_same_server(
    tiny_project: dict[str, str], moto_auth: S3Server, run_cli: CliRunner, tmp_path: Path
) -> None:
    """The control for the test above: the IAM user's real secret pushes (exit 0)."""
    bucket = make_bucket(moto_auth, tmp_path)
    Path("models.toml").write_text(Path("models.toml").read_text() + bucket.remote_toml())
    env = {**tiny_project, **bucket.env}
    assert run_cli("sync", env=env).exit_code == 0
    result = run_cli("push", env=env)
    assert result.exit_code == 0, result.stderr
    assert bucket.objects()


def test_a_remote_that_refuses_downloads_is_skipped_with_one_warning(
    tiny_project: dict[str, str], run_cli: CliRunner, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    """A remote answering 403 (wrong credentials, as S3 says it) costs one warning naming the
    remote and the fix, is not asked again in the run, and the registry serves every blob;
    the signed URL's query is in no output."""
    requests: list[bytes] = []

    def forbid(head: bytes) -> bytes:
        requests.append(head)
        return b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    with raw_http_server(forbid) as endpoint:
        remote = (
            f'[remotes.team]\ntype = "s3"\nbucket = "fleet-models"\nendpoint-url = "{endpoint}"\n'
        )
        Path("models.toml").write_text(Path("models.toml").read_text() + remote)
        env = {**tiny_project, **aws_env(tmp_path, "AKIAWRONG", CANARY)}
        parallel = run_cli("-v", "sync", env=env)  # both blobs meet the refusal at once
        shutil.rmtree("models")
        shutil.rmtree(cli_env["MODELSYNC_STORE"])
        requests.clear()
        result = run_cli("-v", "sync", "--jobs", "1", env=env)
    assert len(requests) == 1  # one after the other: not asked again for the second blob
    for run in (parallel, result):
        assert run.exit_code == 0, run.stderr
        warnings = [line for line in run.stderr.splitlines() if "remote team skipped" in line]
        assert len(warnings) == 1
        assert "AWS_ACCESS_KEY_ID" in warnings[0]
        assert CANARY not in all_output(run)
        assert not SIGNED.search(all_output(run))
    assert Path("models/tiny/weights.bin").read_bytes() == TINY_WEIGHTS


def test_an_unreachable_remote_falls_back_to_the_registry(
    tiny_project: dict[str, str], run_cli: CliRunner, tmp_path: Path
) -> None:
    """A remote whose port is closed: one warning, the registry serves, exit 0."""
    from modelsync.testing.s3_server import free_port  # noqa: PLC0415

    remote = (
        f'[remotes.team]\ntype = "s3"\nbucket = "fleet-models"\n'
        f'endpoint-url = "http://127.0.0.1:{free_port()}"\n'
    )
    Path("models.toml").write_text(Path("models.toml").read_text() + remote)
    result = run_cli("sync", env={**tiny_project, **aws_env(tmp_path, "AKIAX", CANARY)})
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("remote team skipped") == 1
    assert "check the remote's endpoint-url" in result.stderr


def test_without_credentials_sync_warns_and_uses_the_registry(
    tiny_project: dict[str, str], run_cli: CliRunner, tmp_path: Path, moto_server: S3Server
) -> None:
    """No AWS credentials at all: the remote cannot sign, one warning says what to export."""
    Path("models.toml").write_text(
        Path("models.toml").read_text() + make_bucket(moto_server, tmp_path).remote_toml()
    )
    env = aws_env(tmp_path, "", "")
    result = run_cli("sync", env={**tiny_project, **env})
    assert result.exit_code == 0, result.stderr
    assert "no AWS credentials found" in result.stderr
    assert "AWS_SECRET_ACCESS_KEY" in result.stderr


@pytest.mark.parametrize(
    ("table", "where", "never"),
    [
        (
            'bucket = "ms"\naws-secret-access-key = "' + CANARY + '"',
            "aws-secret-access-key",
            CANARY,
        ),
        ('bucket = "ms-b"\nsecret = "' + CANARY + '"', "secret", CANARY),
        ('bucket = "ms-b"\nsession-token = "' + CANARY + '"', "session-token", CANARY),
        ('bucket = "../etc"', "bucket", None),
        ('bucket = "a/b"', "bucket", None),
        ('bucket = "192.168.1.10"', "bucket", None),
        ('bucket = "ms-b"\nprefix = "../../x"', "prefix", None),
        ('bucket = "ms-b"\nprefix = "a//b"', "prefix", None),
        ('bucket = "ms-b"\nprefix = "a?x=1"', "prefix", None),
        ('bucket = "ms-b"\nendpoint-url = "http://user:pw@minio.lan"', "endpoint-url", "pw@"),
        ('bucket = "ms-b"\nendpoint-url = "http://minio.lan:9000"', "endpoint-url", None),
        ('bucket = "ms-b"\nprofile = "a b"', "profile", None),
    ],
)
def test_hostile_remote_tables_exit_2_naming_line_and_key(
    tiny_project: dict[str, str], run_cli: CliRunner, table: str, where: str, never: str | None
) -> None:
    """Credentials, unsafe bucket names and prefixes, and a credential-bearing or plain-http
    remote endpoint stop every command (exit 2) at the line and key, never echoing a secret."""
    text = Path("models.toml").read_text()
    Path("models.toml").write_text(text + '[remotes.team]\ntype = "s3"\n' + table + "\n")
    result = run_cli("lock", "--check", env=tiny_project)
    assert result.exit_code == 2
    assert f"remotes.team.{where}" in result.stderr
    assert re.search(r"models\.toml:\d+:", result.stderr)
    if never is not None:
        assert never not in result.stderr
    if where in ("aws-secret-access-key", "secret", "session-token"):
        assert "AWS_SECRET_ACCESS_KEY" in result.stderr


def test_a_no_op_sync_with_a_remote_loads_no_s3_library(
    tiny_project: dict[str, str],
    cli_env: dict[str, str],
    moto_server: S3Server,
    run_cli_process: CliRunner,
    tmp_path: Path,
) -> None:
    """Declaring a remote costs nothing while nothing must be downloaded: a no-op sync loads
    neither boto3 nor botocore (the first sync, which downloads, does)."""
    bucket = make_bucket(moto_server, tmp_path)
    Path("models.toml").write_text(Path("models.toml").read_text() + bucket.remote_toml())
    env = {**cli_env, **tiny_project, **bucket.env}
    code, first = loaded_by(tmp_path, env, "sync")
    assert code == 0
    assert "boto3" in first
    code, modules = loaded_by(tmp_path, env, "sync")
    assert code == 0
    assert modules & {"boto3", "botocore", "aiohttp"} == set()
