"""`modelsync store`: the store's size, blobs, the bytes dedup saves, registered projects and
partial downloads, from real syncs of two projects against the local hub."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

SHARED = b"s" * 40_000
ONLY_B = b"b" * 1_000


@pytest.fixture
def env(hub: ServerHandle, tmp_path: Path) -> dict[str, str]:
    """The hub as the implicit `hf` registry; caches that hold nothing to adopt."""
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }


def test_store_view_counts_blobs_dedup_projects_and_partials(
    run_cli: CliRunner,
    env: dict[str, str],
    hub_repo: HubRepoFactory,
    tmp_path: Path,
) -> None:
    """Two projects share one blob: it is stored once and counted as shared; a partial in
    tmp/ is counted; a project whose lock was deleted is named as such."""
    hub_repo("org/a", {"w.bin": SHARED})
    hub_repo("org/b", {"w.bin": SHARED, "x.bin": ONLY_B})
    for name, repo in (("one", "org/a"), ("two", "org/b")):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "models.toml").write_text(
            f'[models.m]\nsource = "hf://{repo}"\ninclude = ["*"]\n'
        )
        assert run_cli("-m", str(folder), "sync", env=env).exit_code == 0
    store = Path(os.environ["MODELSYNC_STORE"])
    (store / "tmp" / f"{'0' * 64}.x.part").write_bytes(b"p" * 10)
    empty = run_cli("--store", str(tmp_path / "none"), "store")
    assert empty.exit_code == 0
    assert "blobs: 0 (0 B); shared by dedup: 0 B" in empty.stdout
    (tmp_path / "one" / "models.lock").unlink()
    result = run_cli("store")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        f"store: {store} (40.0 KiB)",
        "blobs: 2 (40.0 KiB); shared by dedup: 39.1 KiB",
        "partial downloads: 1 (10 B)",
        "quarantined: 0 (0 B)",
        "projects: 2",
    ]
    one, two = tmp_path / "one", tmp_path / "two"
    gone = "(lock moved or deleted; see `modelsync gc`)"
    assert sorted(lines[5:]) == [  # in the order of locks.d's entries
        f"  {one / 'models.lock'} → {one / 'models'}: 1 blobs, 39.1 KiB {gone}",
        f"  {two / 'models.lock'} → {two / 'models'}: 2 blobs, 40.0 KiB",
    ]
    [report] = run_cli("store", "--json").json_lines()
    assert report["blobs"] == 2
    assert report["blob_bytes"] == len(SHARED) + len(ONLY_B)
    assert report["shared_bytes"] == len(SHARED)
    assert report["partials"] == 1
    assert report["bytes"] == len(SHARED) + len(ONLY_B) + 10
    assert sorted(p["exists"] for p in report["projects"]) == [False, True]
