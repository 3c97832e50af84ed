"""The parse of models.toml and models.lock kept in the store (modelsync/toml_cache.py) is used
only for the exact text it was parsed from: an edit, a damaged entry or a forged one is never
read in place of the file, and the document is validated on every run anyway."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from modelsync import toml_cache
from modelsync.errors import ExitCode
from tests.fixtures.cli import CliRunner


def entries(env: dict[str, str]) -> list[Path]:
    """The kept parses in the test's store."""
    return sorted((Path(env["MODELSYNC_STORE"]) / "parsed").glob("*.json"))


def test_an_edited_manifest_or_lock_is_read_anew(
    tiny_project: dict[str, str], cli_env: dict[str, str], run_cli_process: CliRunner
) -> None:
    """After a sync kept both parses, an edit to either file is seen by the next run: a changed
    manifest makes the lock stale, an unsafe path in the lock is refused with its line."""
    env = {**cli_env, **tiny_project}
    assert run_cli_process("sync", env=env).exit_code == 0
    assert len(entries(env)) == 2
    assert run_cli_process("status", env=env).exit_code == 0
    manifest = Path("models.toml")
    original = manifest.read_text()
    manifest.write_text(original.replace('include = ["*"]', 'include = ["*.bin"]'))
    stale = run_cli_process("status", env=env)
    assert stale.exit_code == ExitCode.STALE
    assert "models.toml changed since the lock was written" in stale.stdout + stale.stderr
    manifest.write_text(original)
    lock = Path("models.lock")
    lock.write_text(lock.read_text().replace('path = "config.json"', 'path = "../config.json"'))
    refused = run_cli_process("sync", env=env)
    assert refused.exit_code == ExitCode.USAGE
    assert "model.file.path: unsafe path '../config.json'" in refused.stderr


def test_damaged_and_forged_entries_are_parsed_again(
    tiny_project: dict[str, str], cli_env: dict[str, str], run_cli_process: CliRunner
) -> None:
    """An entry that is not JSON, or that claims another text's digest, is ignored (the file
    is parsed and the entry rewritten); a no-op sync still finds nothing to do."""
    env = {**cli_env, **tiny_project}
    assert run_cli_process("sync", env=env).exit_code == 0
    first, second = entries(env)
    first.write_text("{not json")
    forged = json.loads(second.read_text())
    forged["sha256"] = "0" * 64
    forged["document"] = {"version": 1}
    second.write_text(json.dumps(forged))
    result = run_cli_process("sync", env=env)
    assert result.exit_code == 0, result.stderr
    assert "nothing to do" in result.stdout
    for entry in (first, second):
        kept = json.loads(entry.read_text())
        assert kept["sha256"] != "0" * 64
        assert "version" in kept["document"] or "models" in kept["document"]


def test_only_text_json_can_hold_is_kept_and_never_in_a_missing_store(tmp_path: Path) -> None:
    """A document with a TOML date is not kept (JSON has no dates); no entry creates the store;
    an entry is read back only for the same path and text."""
    source = tmp_path / "models.toml"
    folder = tmp_path / "store" / "parsed"
    toml_cache.remember(folder, source, "a = 1", {"a": 1})
    assert not (tmp_path / "store").exists()
    folder.parent.mkdir()
    toml_cache.remember(folder, source, "d = 2024-01-01", {"d": date(2024, 1, 1)})
    assert toml_cache.recall(folder, source, "d = 2024-01-01") is None
    toml_cache.remember(folder, source, "a = 1", {"a": 1})
    assert toml_cache.recall(folder, source, "a = 1") == {"a": 1}
    assert toml_cache.recall(folder, source, "a = 2") is None
    assert toml_cache.recall(folder, tmp_path / "other.toml", "a = 1") is None
    assert len(list(folder.iterdir())) == 1  # one entry per file, rewritten
