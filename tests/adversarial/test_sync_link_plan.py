"""The link mode is a plan decision: `sync --dry-run` and `status` name the mode apply then
places by (judged without writing into the target dir), and where the judgement proves wrong
at placement time apply falls back to the next mode and says so."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from modelsync.server.runner import ServerHandle
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state
from modelsync.sync.apply import ApplyOptions, apply_plan
from modelsync.sync.inventory import take_inventory
from modelsync.sync.link import place
from modelsync.sync.model import AUTO_ORDER, LinkMode, Wanted
from modelsync.sync.plan import plan_sync
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

WEIGHTS = random.Random(41).randbytes(50_000)  # noqa: S311 - reproducible test data


def test_dry_run_and_status_name_the_link_mode_sync_uses(
    run_cli: CliRunner, hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """Before anything is placed, the dry run and status plan the mode the real sync then
    reports, and neither writes into the target dir to find it out."""
    hub_repo("org/w", {"weights.bin": WEIGHTS})
    Path("models.toml").write_text('[models.w]\nsource = "hf://org/w"\ninclude = ["*"]\n')
    env = {"HF_ENDPOINT": hub.endpoint, "OLLAMA_MODELS": str(tmp_path / "no-ollama")}
    assert run_cli("lock", env=env).exit_code == 0

    dry = run_cli("sync", "--dry-run", "--json", env=env).json_lines()[-1]
    status = run_cli("status", "--json", env=env).json_lines()[-1]
    assert not Path("models").exists()
    done = run_cli("sync", "--json", env=env).json_lines()[-1]
    assert done["link_mode"] in ("reflink", "hardlink")  # store and target share one disk here
    assert dry["plan"]["link_mode"] == status["plan"]["link_mode"] == done["link_mode"]
    assert dry["link_mode"] == done["link_mode"]


def test_a_wrong_link_judgement_falls_back_and_is_reported(tmp_path: Path) -> None:
    """A plan that says reflink where the filesystem has none (XFS without reflink=1 looks
    alike): apply places by the next mode, records that one, and logs the fallback."""
    probe_blob = tmp_path / "probe.bin"
    probe_blob.write_bytes(b"x")
    try:
        place(probe_blob, tmp_path / "probe-target", LinkMode.REFLINK)
    except OSError:
        pass
    else:
        pytest.skip("this filesystem makes reflinks: nothing to fall back from")
    source = tmp_path / "weights.bin"
    source.write_bytes(WEIGHTS)
    sha = hashlib.sha256(WEIGHTS).hexdigest()
    root = tmp_path / "models"
    wanted = Wanted("w", "weights.bin", len(WEIGHTS), sha, root / "w" / "weights.bin", "", "hf")
    layout = StoreLayout(tmp_path / "store")
    with open_state(layout.state_path) as state:
        blobs = BlobStore(layout, state)
        assert blobs.adopt(source, sha, len(WEIGHTS)) is not None
        inventory = take_inventory(blobs, [wanted], root, {}, lock=tmp_path / "models.lock")
        wrong = dataclasses.replace(inventory, links=AUTO_ORDER)  # what a wrong look says
        plan = plan_sync([wanted], wrong)
        assert plan.link_mode is LinkMode.REFLINK
        with capture_logs() as logs:
            applied = asyncio.run(apply_plan(plan, wrong, blobs, {}, ApplyOptions(gitignore=False)))
    assert applied.placed == 1
    assert applied.link_modes == {str(root): "hardlink"}
    assert wanted.target.stat().st_ino == layout.blob_path(sha).stat().st_ino
    fallbacks = [e for e in logs if e["event"] == "sync.link_fallback"]
    assert [(e["planned"], e["used"]) for e in fallbacks] == [("reflink", "hardlink")]
