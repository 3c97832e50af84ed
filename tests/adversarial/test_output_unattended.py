"""Unattended runs (CI logs, cron): a log without a TTY gets human lines, not JSON; `--json` is
JSON only; `-q` is silent on success and says what led up to a failure; a lock held by a hung
run is waited for at most `--wait-timeout` seconds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.fixtures.cli import CliRunner

HOLDER = """
import sys, time
from pathlib import Path
from modelsync.store.locking import exclusive
with exclusive(Path(sys.argv[1]), wait=False):
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def env(tiny_project: dict[str, str]) -> dict[str, str]:
    """The tiny project's environment (tests/fixtures/projects.py)."""
    return tiny_project


def test_a_ci_log_holds_human_lines_not_json(
    run_cli_process: CliRunner, env: dict[str, str]
) -> None:
    """`lock` then `sync` with stdout and stderr as pipes (a CI log): stderr has one short line
    per event and no JSON object, stdout the summaries."""
    lock = run_cli_process("lock", env=env)
    sync = run_cli_process("sync", env=env)
    assert (lock.exit_code, sync.exit_code) == (0, 0), sync.stderr
    for result in (lock, sync):
        assert not [x for x in result.stderr.splitlines() if x.lstrip().startswith("{")]
    assert "fetched tiny/weights.bin (4.9 KiB in " in sync.stderr
    assert "wrote models.lock (1 models, 1 resolved" in lock.stdout
    assert sync.stdout.startswith("synced 1 models (profile -: the lock names no profile): ")


def test_json_mode_is_json_only_ending_with_a_report_and_its_exit_code(
    run_cli_process: CliRunner, env: dict[str, str]
) -> None:
    """With --json every stdout line is a JSON object (events, then the report with counts,
    bytes, seconds and exit code) and stderr stays empty on success."""
    result = run_cli_process("--json", "sync", env=env)
    assert result.exit_code == 0
    assert result.stderr == ""
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    events = {o["event"] for o in objects[:-1]}
    assert {"fetch.done", "sync.done"} <= events
    report = objects[-1]
    assert report["event"] == "report"
    assert report["command"] == "sync"
    assert report["exit_code"] == 0
    assert report["fetched"] == 2
    assert report["bytes_fetched"] == 5002
    assert isinstance(report["seconds"], float)


def test_quiet_is_silent_on_success_and_tells_the_story_on_failure(
    run_cli_process: CliRunner, env: dict[str, str], httpserver: HTTPServer
) -> None:
    """`-q` prints nothing when all is well (cron mails nothing); when the registry refuses,
    stderr holds the last events before the error line, and still no secret."""
    ok = run_cli_process("-q", "sync", env=env)
    assert (ok.exit_code, ok.stdout, ok.stderr) == (0, "", "")
    Path("models.toml").write_text(
        Path("models.toml").read_text().replace('include = ["*"]', 'include = ["*.bin"]')
    )
    httpserver.expect_request(re.compile("/.*")).respond_with_data("no", status=403)
    down = {
        **env,
        "HF_ENDPOINT": httpserver.url_for("").rstrip("/"),
        "HF_TOKEN": "hf_SecretTokenValue1234567890",
    }
    failed = run_cli_process("-q", "sync", env=down)
    assert failed.exit_code == 5
    assert failed.stdout == ""
    lines = failed.stderr.splitlines()
    assert lines[0].startswith("modelsync: the last ")
    assert any("re-locking first: " in line for line in lines[1:-1])
    assert lines[-1].startswith("modelsync: error: ")
    assert "SecretTokenValue" not in failed.stderr


def test_wait_timeout_gives_up_on_a_hung_holder(
    run_cli_process: CliRunner, env: dict[str, str], tmp_path: Path
) -> None:
    """Another process holds the store lock and never lets go: `sync --wait-timeout 0.5` says
    it is waiting, then exits 6 naming the holder's pid, and changes nothing."""
    assert run_cli_process("lock", env=env).exit_code == 0
    lock_path = Path(os.environ["MODELSYNC_STORE"]) / "store.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        result = run_cli_process("sync", "--wait-timeout", "0.5", env=env)
    finally:
        holder.kill()
        holder.wait()
        assert holder.stdout is not None
        holder.stdout.close()
    assert result.exit_code == 6, result.stderr
    assert f"waiting for {lock_path}: held by pid {holder.pid} " in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        f"modelsync: error: {lock_path}: still held by pid {holder.pid} ("
    )
    assert not (tmp_path / "models").exists()
