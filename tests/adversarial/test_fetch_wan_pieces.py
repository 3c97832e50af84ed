"""A mid-sized file on a link that caps each connection gets every connection: `sync` without
--connections splits 32 MiB into 8 ranges (with 16 MiB parts it took 2, and a 64 MiB file 4:
1.23 s instead of 0.68 s at 16 MB/s per connection, benchmarks/wan.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.fixtures.cli import CliRunner
from tests.fixtures.hub import HubFactory, HubRepoFactory


def test_a_capped_32_mib_file_goes_over_all_8_connections(
    run_cli: CliRunner, hub_factory: HubFactory, tmp_path: Path
) -> None:
    """Each connection capped at 32 MiB/s (the probe's 4 MiB take 0.125 s, past its window: a
    loaded machine only makes that slower), the default sync sends 8 ranges to the CDN (no other
    request: none is retried) and places the file whole."""
    data = os.urandom(32 << 20)
    hub = hub_factory(rate_cap=32 << 20)
    HubRepoFactory(hub)("org/mid", {"mid.bin": data})
    Path("models.toml").write_text('[models.mid]\nsource = "hf://org/mid"\ninclude = ["*"]\n')
    env = {
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(tmp_path / "no-hf"),
        "OLLAMA_MODELS": str(tmp_path / "no-ollama"),
    }
    assert run_cli("lock", env=env).exit_code == 0
    result = run_cli("--store", str(tmp_path / "store"), "sync", env=env)
    assert result.exit_code == 0, result.stderr
    placed = Path("models/mid/mid.bin").read_bytes()
    assert hashlib.sha256(placed).digest() == hashlib.sha256(data).digest()
    cdn = hub.repos.counters.request_log("cdn_file")
    assert len(cdn) == 8
    assert all("range" in r.header_names for r in cdn)
