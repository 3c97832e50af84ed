"""`sync --dry-run` and `status` show what sync then does: bytes the Hugging Face cache holds
are adopted, not fetched, and a partial download is resumed, so neither is counted as bytes to
fetch; the real sync's report then matches the plan number for number."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from huggingface_hub import hf_hub_download

from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

CACHED = random.Random(31).randbytes(300_000)  # noqa: S311 - reproducible test data
RESUMED = random.Random(32).randbytes(200_000)  # noqa: S311
FRESH = random.Random(33).randbytes(100_000)  # noqa: S311
HELD = 150_000
"""Bytes of resumed.bin already in a partial download."""


def test_dry_run_and_status_match_what_sync_does(
    run_cli: CliRunner,
    hub: ServerHandle,
    hub_repo: HubRepoFactory,
    hf_cache: Path,
    tmp_path: Path,
) -> None:
    """One file in the Hugging Face cache, one with a partial download, one new: the dry run
    and status plan 1 adoption and 2 downloads of exactly the missing bytes; sync's report says
    it adopted and fetched just that."""
    repo = hub_repo("org/m", {"cached.bin": CACHED, "resumed.bin": RESUMED, "fresh.bin": FRESH})
    hf_hub_download(
        repo.repo_id, "cached.bin", revision=repo.commit, endpoint=hub.endpoint, cache_dir=hf_cache
    )
    Path("models.toml").write_text('[models.m]\nsource = "hf://org/m"\ninclude = ["*"]\n')
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(hf_cache),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    assert run_cli("lock", env=env).exit_code == 0
    layout = StoreLayout(tmp_path / "store")
    layout.tmp_dir.mkdir(parents=True)
    partial = layout.tmp_dir / layout.partial_name(hashlib.sha256(RESUMED).hexdigest(), "1-cafe")
    partial.write_bytes(RESUMED[:HELD])
    to_fetch = len(FRESH) + len(RESUMED) - HELD

    dry = run_cli("sync", "--dry-run", "--json", env=env).json_lines()[-1]["plan"]
    status = run_cli("status", "--json", env=env).json_lines()[-1]["plan"]
    assert status == dry
    assert dry["bytes_to_fetch"] == to_fetch
    assert dry["bytes_resumed"] == HELD
    assert dry["bytes_to_adopt"] == len(CACHED)
    assert [(f["file"], f["resume_from"]) for f in dry["fetch"]] == [
        ("m/fresh.bin", 0),
        ("m/resumed.bin", HELD),
    ]
    cached = hf_cache / "models--org--m" / "blobs" / hashlib.sha256(CACHED).hexdigest()
    assert [(f["file"], f["from"], f["path"]) for f in dry["adopt"]] == [
        ("m/cached.bin", "huggingface", str(cached))
    ]
    human = run_cli("sync", "--dry-run", env=env).stdout.splitlines()
    assert "  adopt   m/cached.bin (293.0 KiB) from huggingface: " + str(cached) in human
    assert "  fetch   m/resumed.bin (48.8 KiB of 195.3 KiB; 146.5 KiB in a partial)" in human
    assert human[-1].endswith(
        ": 2 files to fetch (146.5 KiB), 1 to adopt (293.0 KiB), 3 to place, 0 to remove, "
        "0 unchanged"
    )

    done = run_cli("sync", "--json", env=env).json_lines()[-1]
    assert done["bytes_fetched"] == dry["bytes_to_fetch"]
    assert done["fetched"] == len(dry["fetch"])
    assert done["bytes_adopted"] == dry["bytes_to_adopt"]
    assert [(a["file"], a["from"]) for a in done["adopted"]] == [
        (f["file"], f["from"]) for f in dry["adopt"]
    ]
    assert done["placed"] == len(dry["place"]) == 3
    assert Path("models/m/resumed.bin").read_bytes() == RESUMED
