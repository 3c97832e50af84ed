"""Every exit code of design.md section 2, each from a real run of the CLI against the local hub:
0 success, 1 internal, 2 usage or bad input (a lock from a newer modelsync among them), 3 stale
or drift, 4 integrity, 5 remote refused (and nothing local changed), 6 busy."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from modelsync.errors import ExitCode
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive
from tests.fixtures.cli import CliRunner


@pytest.fixture
def env(tiny_project: dict[str, str]) -> dict[str, str]:
    """The tiny project's environment (tests/fixtures/projects.py)."""
    return tiny_project


def error_line(stderr: str) -> str:
    """The one error line of a failed run."""
    [line] = [x for x in stderr.splitlines() if x.startswith("modelsync: error:")]
    return line


def test_exit_0_success_and_nothing_to_do(run_cli: CliRunner, env: dict[str, str]) -> None:
    """A sync that works and one that has nothing to do both exit 0."""
    assert run_cli("sync", env=env).exit_code == ExitCode.OK
    again = run_cli("sync", env=env)
    assert again.exit_code == ExitCode.OK
    assert again.stdout.startswith("nothing to do")


def test_exit_1_internal_error_is_one_line_with_a_traceback_on_v(
    run_cli: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """A store whose state.db is a folder breaks an assumption of ours: exit 1 with one line
    saying how to get the traceback, and the traceback with -v."""
    store = tmp_path / "broken-store"
    (store / "state.db").mkdir(parents=True)
    assert run_cli("lock", env=env).exit_code == 0
    result = run_cli("--store", str(store), "status", env=env)
    assert result.exit_code == ExitCode.INTERNAL
    assert error_line(result.stderr).startswith("modelsync: error: internal error: ")
    assert error_line(result.stderr).endswith("(run again with -v for the traceback)")
    assert "Traceback" not in result.stderr
    loud = run_cli("--store", str(store), "status", "-v", env=env)
    assert loud.exit_code == ExitCode.INTERNAL
    assert "Traceback (most recent call last)" in loud.stderr


def test_exit_2_usage_and_a_lock_from_a_newer_modelsync(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """A bad flag exits 2; so does a lock whose format version is newer than this modelsync
    reads, for every command that reads it, saying to upgrade."""
    assert run_cli("sync", "--jobs", "many", env=env).exit_code == ExitCode.USAGE
    assert run_cli("lock", env=env).exit_code == 0
    lock = Path("models.lock")
    text = lock.read_text()
    assert "\nversion = 1\n" in text
    lock.write_text(text.replace("\nversion = 1\n", "\nversion = 99\n"))
    for command in (("sync", "--frozen"), ("lock", "--check"), ("status",), ("verify",)):
        result = run_cli(*command, env=env)
        assert result.exit_code == ExitCode.USAGE, (command, result.stderr)
        line = error_line(result.stderr)
        assert "lock format version 99 is newer than this modelsync reads (1)" in line, command
        assert "upgrade modelsync" in line
    assert not Path("models").exists()


def test_exit_3_stale_lock_and_drift(run_cli: CliRunner, env: dict[str, str]) -> None:
    """`lock --check` and `sync --locked` without a fresh lock exit 3, and so does `status`
    when a placed file is gone."""
    assert run_cli("lock", "--check", env=env).exit_code == ExitCode.STALE
    assert run_cli("sync", "--locked", env=env).exit_code == ExitCode.STALE
    assert run_cli("sync", env=env).exit_code == 0
    Path("models/tiny/config.json").unlink()
    assert run_cli("status", env=env).exit_code == ExitCode.STALE


def test_exit_4_integrity(run_cli: CliRunner, env: dict[str, str]) -> None:
    """A placed copy changed by hand fails `verify` with exit 4."""
    assert run_cli("sync", "--link", "copy", env=env).exit_code == 0
    weights = Path("models/tiny/weights.bin")
    weights.chmod(0o644)
    weights.write_bytes(b"x" * 5000)
    result = run_cli("verify", env=env)
    assert result.exit_code == ExitCode.INTEGRITY
    assert "fail verification" in error_line(result.stderr)


def test_exit_5_registry_refuses_and_nothing_local_changes(
    run_cli: CliRunner, env: dict[str, str], httpserver: HTTPServer
) -> None:
    """A registry that answers 503 to everything (or refuses) exits 5; the lock, the placed
    files and the store are as they were."""
    assert run_cli("sync", env=env).exit_code == 0
    Path("models.toml").write_text(
        Path("models.toml").read_text().replace('include = ["*"]', 'include = ["*.bin"]')
    )
    before = {p: p.read_bytes() for p in (Path("models.lock"), Path("models/tiny/weights.bin"))}
    store = Path(os.environ["MODELSYNC_STORE"])
    blobs = sorted(p.name for p in store.rglob("*") if p.is_file())
    httpserver.expect_request(re.compile("/.*")).respond_with_data("no", status=403)
    down = {**env, "HF_ENDPOINT": httpserver.url_for("").rstrip("/")}
    for command in (("lock",), ("sync",)):
        result = run_cli(*command, env=down)
        assert result.exit_code == ExitCode.REMOTE, (command, result.stderr)
        assert "403" in error_line(result.stderr)
    assert {p: p.read_bytes() for p in before} == before
    assert Path("models/tiny/config.json").exists()
    assert sorted(p.name for p in store.rglob("*") if p.is_file()) == blobs


def test_exit_6_busy_with_no_wait_or_after_the_wait_timeout(
    run_cli: CliRunner, env: dict[str, str]
) -> None:
    """While another run holds the store lock, `--no-wait` exits 6 at once and
    `--wait-timeout 0.2` exits 6 after waiting, naming the holder and the option."""
    assert run_cli("lock", env=env).exit_code == 0
    store = Path(os.environ["MODELSYNC_STORE"])
    with exclusive(StoreLayout(store).lock_path, wait=False):
        busy = run_cli("sync", "--no-wait", env=env)
        waited = run_cli("--wait-timeout", "0.2", "sync", env=env)
    assert busy.exit_code == ExitCode.BUSY
    assert waited.exit_code == ExitCode.BUSY, waited.stderr
    line = error_line(waited.stderr)
    assert line.startswith(
        f"modelsync: error: {store / 'store.lock'}: still held by pid {os.getpid()} ("
    )
    assert line.endswith(
        " after 0.2 s (--wait-timeout); run again later, or with a longer --wait-timeout"
    )
    assert "waiting for " in waited.stderr
    assert not Path("models").exists()
