"""A store shared with other users must not let one of them choose the lock another user's
sync follows: the kept parse of models.lock (modelsync/toml_cache.py) is keyed by the digest of
the lock's text, which anyone who can read the (committed) lock can compute. An entry is read
only when this user owns it and nobody else may write it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.fixtures.cli import CliRunner

NOBODY = 65534


def lock_entry(env: dict[str, str]) -> Path:
    """The kept parse of ./models.lock in the test's store."""
    where = os.fsencode(os.path.realpath("models.lock"))
    name = hashlib.sha256(where).hexdigest()[:32]
    return Path(env["MODELSYNC_STORE"]) / "parsed" / f"{name}.json"


@pytest.mark.parametrize("how", ["another user's file", "a file others may write"])
def test_a_forged_parse_of_the_lock_is_never_followed(
    how: str,
    tiny_project: dict[str, str],
    cli_env: dict[str, str],
    run_cli_process: CliRunner,
) -> None:
    """A co-user plants the parse of our exact lock text with a path of their choosing: the
    next sync reads the lock itself, finds nothing to do and places nothing new."""
    if how == "another user's file" and os.geteuid() != 0:
        pytest.skip("making a file another user owns needs root")
    env = {**cli_env, **tiny_project}
    assert run_cli_process("sync", env=env).exit_code == 0
    entry = lock_entry(env)
    kept = json.loads(entry.read_text())
    assert kept["sha256"] == hashlib.sha256(Path("models.lock").read_bytes()).hexdigest()
    planted = json.dumps(kept).replace('"config.json"', '"planted.json"')
    assert planted != json.dumps(kept)
    entry.unlink()
    entry.write_text(planted)
    if how == "another user's file":
        os.chown(entry, NOBODY, NOBODY)
        entry.chmod(0o644)
    else:
        entry.chmod(0o666)
    result = run_cli_process("sync", env=env)
    assert result.exit_code == 0, result.stderr
    assert "nothing to do" in result.stdout
    target = Path("models") / "tiny"
    assert (target / "config.json").is_file()
    assert not (target / "planted.json").exists()
