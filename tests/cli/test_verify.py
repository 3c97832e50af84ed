"""`modelsync verify`: exit 0 when blobs and placed files match the lock, 4 naming each bad
file with expected and actual size and digest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner
from tests.fixtures.projects import TINY_WEIGHTS

WEIGHTS = TINY_WEIGHTS
DIGEST = hashlib.sha256(WEIGHTS).hexdigest()


@pytest.fixture
def env(tiny_project: dict[str, str]) -> dict[str, str]:
    """The tiny project's environment (tests/fixtures/projects.py)."""
    return tiny_project


def test_verify_without_a_lock_exits_2(run_cli: CliRunner, env: dict[str, str]) -> None:
    """There is nothing to verify against without models.lock."""
    result = run_cli("verify", env=env)
    assert result.exit_code == 2
    assert result.stderr == (
        "modelsync: error: models.lock: not found; run `modelsync lock` "
        "(or `modelsync sync` without --frozen)\n"
    )


def test_verify_passes_then_names_each_bad_file(run_cli: CliRunner, env: dict[str, str]) -> None:
    """A fresh sync verifies (default and --full); a copy edited by hand and a missing file
    make verify exit 4 naming both, expected versus found; `sync --repair` fixes it."""
    assert run_cli("sync", "--link", "copy", env=env).exit_code == 0
    ok = run_cli("verify", env=env)
    assert ok.exit_code == 0
    assert ok.stdout == (
        f"verified 2 files and 2 blobs in {Path.cwd() / 'models'} (profile -; "
        "size + stat cache): all match models.lock\n"
    )
    assert run_cli("verify", "--full", env=env).exit_code == 0
    weights = Path("models/tiny/weights.bin").absolute()
    weights.chmod(0o644)
    weights.write_bytes(b"W" * 5000)
    bad = hashlib.sha256(b"W" * 5000).hexdigest()
    config = Path("models/tiny/config.json").absolute()
    config.unlink()
    result = run_cli("verify", env=env)
    assert result.exit_code == 4
    error = next(line for line in result.stderr.splitlines() if line.startswith("modelsync:"))
    assert error == (
        f"modelsync: error: 2 of 2 files fail verification: {config}: expected 2 bytes, sha256 "
        f"{hashlib.sha256(b'{}').hexdigest()}, found missing (run `modelsync sync`); {weights}: "
        f"expected 5000 bytes, sha256 {DIGEST}, found 5000 bytes, sha256 {bad}; "
        "run `modelsync sync --repair` to re-fetch and re-link them"
    )
    assert run_cli("sync", "--repair", "--link", "copy", env=env).exit_code == 0
    assert run_cli("verify", "--full", env=env).exit_code == 0
    assert weights.read_bytes() == WEIGHTS
