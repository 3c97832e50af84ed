"""A model's old files stay a whole set: when one of its new files cannot be downloaded, its
other new files do not replace old ones either, or the folder would hold shards of two
revisions (a split GGUF that loads garbage or not at all) instead of the previous working set."""

from __future__ import annotations

import hashlib
from pathlib import Path

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

ONE, TWO = "w-00001-of-00002.gguf", "w-00002-of-00002.gguf"


def test_a_model_whose_new_file_fails_keeps_all_its_old_files(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """Both shards change upstream and the second's new bytes are gone from the registry: sync
    fails and the folder still holds both old shards; once it can, it places both new ones."""
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    old = {ONE: b"1" * 3000, TWO: b"2" * 3000}
    new = {ONE: b"a" * 3000, TWO: b"b" * 3000}
    hub_repo("org/w", old)
    Path("models.toml").write_text('[models.w]\nsource = "hf://org/w"\ninclude = ["*"]\n')
    assert run_cli("sync", env=env).exit_code == 0
    hub_repo("org/w", new)
    assert run_cli("lock", "--upgrade", env=env).exit_code == 0
    sha = hashlib.sha256(new[TWO]).hexdigest()
    gone = hub.repos.local_blob(sha)  # the folder's file: served in place, not copied
    assert gone is not None
    kept = gone.read_bytes()
    gone.unlink()  # the registry lost the new second shard
    failed = run_cli("sync", env=env)
    assert failed.exit_code != 0, failed.stderr
    folder = Path("models/w")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == old
    gone.write_bytes(kept)
    hub.repos.import_directory("org/w")  # hashed again: served again
    assert run_cli("sync", env=env).exit_code == 0
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == new
