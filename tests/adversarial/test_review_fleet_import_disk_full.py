"""Review of `import` into a store whose disk cannot hold a blob: refused before copying it,
with both numbers (exit 2) as `sync` does, instead of an internal error on ENOSPC.

The store lives on a 2 MiB tmpfs mounted in a private mount namespace (skipped where mounting
is not permitted)."""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubRepoFactory

MIB = 1 << 20
WEIGHTS = random.Random(7).randbytes(3 * MIB)  # noqa: S311 - reproducible test data

SCRIPT = """
mount -t tmpfs -o size=2m tmpfs "$STORE" || exit 99
"$PY" -m modelsync import "$BUNDLE"; echo "rc=$?"
ls -A "$STORE"/tmp "$STORE"/blobs/sha256 2>/dev/null | grep -v : | grep . ; echo "end"
"""


def test_import_refuses_a_bundle_larger_than_the_free_space(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path, run_cli: CliRunner
) -> None:
    """A 3 MiB bundle into a 2 MiB store: exit 2 naming the bytes needed and free; no blob
    and no temp file is left in the store."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    hub_repo("org/w", {"weights.bin": WEIGHTS})
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "models.toml").write_text(
        '[models.w]\nsource = "hf://org/w"\ninclude = ["*"]\n'
    )
    env_a = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
        "MODELSYNC_STORE": str(tmp_path / "store-a"),
    }
    assert run_cli("-m", "a", "sync", env=env_a).exit_code == 0
    bundle = tmp_path / "models.tar"
    assert run_cli("-m", "a", "export", "--bundle", str(bundle), env=env_a).exit_code == 0
    store = tmp_path / "store-b"
    store.mkdir()
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "MODELSYNC_STORE": str(store),
        "STORE": str(store),
        "BUNDLE": str(bundle),
        "PY": sys.executable,
    }
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", SCRIPT],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 99 or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    assert result.stdout.splitlines()[-2:] == ["rc=2", "end"], result.stdout + result.stderr
    assert f"modelsync: error: {store}: the plan fetches 3.0 MiB ({3 * MIB} bytes) but only " in (
        result.stderr
    )
