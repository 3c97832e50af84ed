"""Disk full, then space freed: the free-space preflight counts the bytes a partial download
already holds, so a sync that only needs the rest finishes, and a refusal names those bytes.

The store lives on a 4 MiB tmpfs mounted in a private mount namespace (skipped where mounting is
not permitted); the partial is what a sync killed mid-download leaves in `<store>/tmp/`."""

from __future__ import annotations

import hashlib
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelsync.server.runner import ServerHandle
from modelsync.store.layout import StoreLayout
from tests.fixtures.hub import HubRepoFactory

MIB = 1 << 20
WEIGHTS = random.Random(9).randbytes(3 * MIB)  # noqa: S311 - reproducible test data
DIGEST = hashlib.sha256(WEIGHTS).hexdigest()
HELD = 2 * MIB
"""Bytes of the file already in the partial download."""

SCRIPT = """
mount -t tmpfs -o size=4m tmpfs "$STORE" || exit 99
mkdir "$STORE/tmp" && cp "$SEED"/* "$STORE/tmp/" || exit 98
head -c 1572864 /dev/zero > "$STORE/filler"
"$PY" -m modelsync -q sync --link copy; echo "rc=$?"
rm "$STORE/filler"
"$PY" -m modelsync sync --link copy; echo "rc=$?"
ls "$STORE/tmp"
"""


def test_sync_resumes_a_partial_once_space_is_freed(
    hub: ServerHandle, hub_repo: HubRepoFactory, tmp_path: Path
) -> None:
    """With 2 of 3 MiB in a partial: under 1 MiB free, sync refuses (exit 2) naming the partial
    bytes; with 2 MiB free (less than the whole file) it fetches the rest and places the file."""
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare")
    hub_repo("org/w", {"weights.bin": WEIGHTS})
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "models.toml").write_text('[models.w]\nsource = "hf://org/w"\ninclude = ["*"]\n')
    store = tmp_path / "store"
    store.mkdir()
    seed = tmp_path / "seed"
    seed.mkdir()
    (seed / StoreLayout(store).partial_name(DIGEST, "4242-0badf00d")).write_bytes(WEIGHTS[:HELD])
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
        "MODELSYNC_STORE": str(store),
        "STORE": str(store),
        "SEED": str(seed),
        "PY": sys.executable,
    }
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", SCRIPT],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode in (98, 99) or "unshare failed" in result.stderr:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    assert (lines[0], lines[-1]) == ("rc=2", "rc=0"), result.stderr
    assert ": 1 files fetched (1.0 MiB in " in lines[1]  # the rest only, not the whole file
    refusal = next(line for line in result.stderr.splitlines() if "modelsync: error:" in line)
    assert (
        f"modelsync: error: {store}: the plan fetches 1.0 MiB ({MIB} bytes; another "
        f"2.0 MiB ({HELD} bytes) are already in partial downloads there) but only "
    ) in refusal
    assert (folder / "models" / "w" / "weights.bin").read_bytes() == WEIGHTS
