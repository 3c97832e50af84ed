"""A lock edited by hand (a pull request) must not pass `lock --check` or `sync --locked` while
its manifest digest still matches: every entry's registry, repo/url and revision are checked
against models.toml, and a plain `sync` re-resolves a tampered entry instead of trusting it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tests.fixtures.cli import CliRunner
from tests.fixtures.projects import TINY_WEIGHTS

EVIL = b"not the weights"


@pytest.fixture(scope="session")
def httpserver_listen_address() -> tuple[str, int]:
    """Serve on 127.0.0.1, as the other users of the session-wide `httpserver` expect."""
    return ("127.0.0.1", 0)


def tamper(pattern: str, replacement: str) -> None:
    """Rewrite models.lock as a hostile pull request would, keeping its manifest digest."""
    lock = Path("models.lock")
    text, count = re.subn(pattern, replacement, lock.read_text(), count=1, flags=re.MULTILINE)
    assert count == 1, pattern
    lock.write_text(text)


@pytest.fixture
def locked(run_cli: CliRunner, tiny_project: dict[str, str]) -> dict[str, str]:
    """The tiny project, locked and synced; returns its environment."""
    result = run_cli("sync", env=tiny_project)
    assert result.exit_code == 0, result.stderr
    assert run_cli("lock", "--check").exit_code == 0
    return tiny_project


@pytest.mark.parametrize(
    ("pattern", "replacement"),
    [
        (r'^repo = "org/tiny"$', 'url = "{evil}"'),
        (r'^repo = "org/tiny"$', 'repo = "attacker/tiny"'),
        (r'^revision = "main"$', 'revision = "evil-branch"'),
        (r'^registry = "hf"$', 'registry = "url"'),
    ],
)
def test_check_and_locked_sync_refuse_a_tampered_entry(
    run_cli: CliRunner,
    locked: dict[str, str],
    httpserver: HTTPServer,
    pattern: str,
    replacement: str,
) -> None:
    """An entry whose registry, repo/url or revision differs from models.toml is stale (exit 3)
    for `lock --check` and `sync --locked`, which fetch nothing from the tampered source."""
    evil = httpserver.url_for("/tiny/weights.bin")
    httpserver.expect_request("/tiny/weights.bin").respond_with_data(EVIL)
    tamper(pattern, replacement.format(evil=evil))
    field = replacement.split(" ", 1)[0]
    check = run_cli("lock", "--check")
    assert check.exit_code == 3, check.stderr
    assert check.stderr.startswith("modelsync: error: models.lock is stale: ")
    assert f"model tiny: the lock's {field} differs from models.toml" in check.stderr
    assert check.stderr.count("\n") == 1
    synced = run_cli("sync", "--locked", "--repair", env=locked)
    assert synced.exit_code == 3, synced.stderr
    assert len(httpserver.log) == 0


def test_plain_sync_re_resolves_a_tampered_entry(
    run_cli: CliRunner, locked: dict[str, str], httpserver: HTTPServer, tmp_path: Path
) -> None:
    """A plain `sync` against a lock whose repo became a URL (digests made to match) re-locks from
    models.toml: the hostile URL is never asked and the real bytes are placed."""
    evil = httpserver.url_for("/tiny/weights.bin")
    httpserver.expect_request("/tiny/weights.bin").respond_with_data(EVIL)
    lock = Path("models.lock")
    text = lock.read_text().replace('repo = "org/tiny"', f'url = "{evil}"', 1)
    lock.write_text(text.replace(hashlib.sha256(TINY_WEIGHTS).hexdigest(), "0" * 64))
    fresh = {**locked, "MODELSYNC_STORE": str(tmp_path / "fresh-store")}
    result = run_cli("sync", env=fresh)
    assert result.exit_code == 0, result.stderr
    assert len(httpserver.log) == 0
    assert 'repo = "org/tiny"' in lock.read_text()
    assert Path("models/tiny/weights.bin").read_bytes() == TINY_WEIGHTS


@pytest.mark.usefixtures("locked")
def test_an_entry_the_manifest_does_not_explain_is_stale(run_cli: CliRunner) -> None:
    """A second [[model]] entry for a model models.toml does not declare is stale (exit 3)."""
    lock = Path("models.lock")
    text = lock.read_text()
    start = text.index("[[model]]")
    lock.write_text(text + "\n" + text[start:].replace('name = "tiny"', 'name = "extra"', 1))
    check = run_cli("lock", "--check")
    assert check.exit_code == 3, check.stderr
    assert "the lock still holds extra" in check.stderr


@pytest.mark.usefixtures("locked")
def test_an_entry_for_an_undeclared_profile_is_stale(run_cli: CliRunner) -> None:
    """An entry made profile-specific for a profile models.toml never declared is stale."""
    tamper(r'^(commit = "[0-9a-f]{40}")$', '\\1\nprofile = "evil"')
    check = run_cli("lock", "--check")
    assert check.exit_code == 3, check.stderr
    assert "model tiny: the lock's profile evil is not declared" in check.stderr
