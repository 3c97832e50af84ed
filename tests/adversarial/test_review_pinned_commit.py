"""A lock edited by hand must not move a model that models.toml pins to a commit: when the
manifest's `revision` is a full commit id, every locked entry's `commit` must be that commit, or
`lock --check` and `sync --locked` call the lock stale (exit 3) and fetch nothing."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

GOOD = b"g" * 3000
EVIL = b"e" * 4000


def test_locked_commit_must_be_the_pinned_revision(
    run_cli: CliRunner, hub_repo: HubRepoFactory, tiny_project: dict[str, str]
) -> None:
    """A lock whose commit (and pins) were moved to a later commit of the same repository is
    stale for `lock --check` and `sync --locked`, which place nothing from it."""
    pinned = hub_repo("org/pin", {"weights.bin": GOOD}).commit
    later = hub_repo("org/pin", {"weights.bin": EVIL}).commit
    Path("models.toml").write_text(
        f'[models.pin]\nsource = "hf://org/pin"\nrevision = "{pinned}"\ninclude = ["*"]\n'
    )
    assert run_cli("lock", env=tiny_project).exit_code == 0
    assert run_cli("lock", "--check").exit_code == 0
    lock = Path("models.lock")
    text = lock.read_text()
    assert f'commit = "{pinned}"' in text
    text = text.replace(f'commit = "{pinned}"', f'commit = "{later}"')
    text = text.replace(hashlib.sha256(GOOD).hexdigest(), hashlib.sha256(EVIL).hexdigest())
    text = re.sub(r"^size = 3000$", "size = 4000", text, flags=re.MULTILINE)
    lock.write_text(text)
    check = run_cli("lock", "--check")
    assert check.exit_code == 3, check.stderr
    assert "model pin: the lock's commit differs from models.toml" in check.stderr
    synced = run_cli("sync", "--locked", env=tiny_project)
    assert synced.exit_code == 3, synced.stderr
    assert not Path("models/pin/weights.bin").exists()
