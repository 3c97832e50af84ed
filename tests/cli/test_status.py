"""`modelsync status`: exit 0 when the lock is fresh and the disk matches it, 3 otherwise, with
each difference listed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner
from tests.fixtures.projects import TINY_WEIGHTS

WEIGHTS = TINY_WEIGHTS


@pytest.fixture
def env(tiny_project: dict[str, str]) -> dict[str, str]:
    """The tiny project's environment (tests/fixtures/projects.py)."""
    return tiny_project


def test_status_without_a_lock_is_drift(run_cli: CliRunner, env: dict[str, str]) -> None:
    """No lock: exit 3 saying so."""
    result = run_cli("status", env=env)
    assert result.exit_code == 3
    assert result.stdout == "models.lock: stale: there is no lock (run `modelsync lock`)\n"


def test_status_clean_then_each_difference_listed(run_cli: CliRunner, env: dict[str, str]) -> None:
    """After a sync status is clean (exit 0); a deleted file, a stray edit of models.toml and a
    file changed by hand each show up, with exit 3."""
    assert run_cli("sync", env=env).exit_code == 0
    clean = run_cli("status", env=env)
    assert clean.exit_code == 0
    target = Path.cwd() / "models"
    assert clean.stdout == (
        "models.lock: fresh\n"
        f"clean: 2 files in {target} (profile -): 0 files to fetch (0 B), 0 to place, "
        "0 to remove, 2 unchanged\n"
    )
    Path("models/tiny/config.json").unlink()
    weights = Path("models/tiny/weights.bin")
    weights.unlink()
    weights.write_bytes(b"mine")
    with Path("models.toml").open("a") as handle:
        handle.write("context = 2048\n")
    drift = run_cli("status", env=env)
    assert drift.exit_code == 3
    assert drift.stdout.splitlines() == [
        "models.lock: stale: models.toml changed since the lock was written (run `modelsync lock`)",
        "  place   tiny/config.json (missing)",
        (
            "  conflict tiny/weights.bin: changed since modelsync placed it (expected 5000 bytes, "
            f"sha256 {hashlib.sha256(WEIGHTS).hexdigest()}; found 4 bytes)"
        ),
        (
            f"drift: 2 files in {target} (profile -): 0 files to fetch (0 B), 1 to place, "
            "0 to remove, 1 conflicts, 0 unchanged"
        ),
    ]
    report = run_cli("status", "--json", env=env).json_lines()[-1]
    assert (report["fresh"], report["clean"]) == (False, False)
    assert report["plan"]["place"] == [{"file": "tiny/config.json", "reason": "missing"}]
