"""Fleet benchmark, the S3 half: N machines syncing one lock through one shared S3 remote.

    .venv/bin/python benchmarks/fleet_remote.py [--size 64] [--files 4] [--machines 1 4 16]

One host plays the fleet: the project's Hub server (127.0.0.1, in this process) is upstream,
moto's S3 server (a child process) is the remote, and each machine is its own project folder
and store, synced by a real `modelsync sync` process. The first machine syncs from the registry
and pushes; then N machines sync the same lock at once. Per N: the bytes upstream served per
blob (seeding included: it must be 1.0 whatever N, read from the Hub server's counters) and the
wall time per machine (median, max). moto is a single-process Python server: it, not
modelsync, bounds the remote's throughput here (README "A shared S3 remote" has its figures);
on this shared 2-core machine the times are noisy and only the byte counts are exact.

`remote_rows()` is what benchmarks/fleet.py calls; run alone, this prints its table.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelsync.log import configure  # noqa: E402
from modelsync.server.runner import ServerConfig, ServerHandle, start_in_thread  # noqa: E402
from modelsync.testing.s3_server import moto_server  # noqa: E402

MIB = 1 << 20
REPO = "bench/fleet"
BUCKET = "fleet-bench"
KEYS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}


@dataclass(frozen=True, slots=True)
class FleetRow:
    """One fleet size through one way of sharing."""

    setup: str
    machines: int
    upstream_per_blob: float
    """Bytes upstream (the registry) served, seeding included, divided by the lock's bytes."""
    wall_median: float
    wall_max: float


def _write_repo(root: Path, size: int, files: int) -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible test data
    folder = root / REPO
    folder.mkdir(parents=True)
    for index in range(files):
        (folder / f"part-{index}.bin").write_bytes(rng.randbytes(size // files))


def _env(hub: ServerHandle, endpoint: str, work: Path, store: Path) -> dict[str, str]:
    return {
        **os.environ,
        **KEYS,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(work / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
        "MODELSYNC_STORE": str(store),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_CACHE": str(work / "no-hf-cache"),
        "OLLAMA_MODELS": str(work / "no-ollama"),
        "PYTHONPATH": str(ROOT),
    }


def _modelsync(args: Sequence[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "modelsync", "-q", "--no-progress", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _check(proc: subprocess.Popen[bytes], what: str) -> None:
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{what} exited {proc.returncode}: {err.decode(errors='replace')}")


def remote_rows(
    machines: Sequence[int] = (1, 4, 16), size: int = 64 * MIB, files: int = 4
) -> list[FleetRow]:
    """Seed one S3 remote from the registry, then sync `machines` fresh machines at once from
    it, for each count; one row per count."""
    configure(json=True, verbosity=-1, stream=sys.stderr)  # the in-process server: quiet
    rows = []
    with tempfile.TemporaryDirectory(prefix="modelsync-fleet-remote-") as tmp:
        work = Path(tmp)
        _write_repo(work / "hub", size, files)
        hub = start_in_thread(ServerConfig(root=work / "hub"))
        try:
            with moto_server() as endpoint:
                import boto3  # noqa: PLC0415 - the s3 extra (a dev dependency)

                boto3.client(
                    "s3", endpoint_url=endpoint, region_name="us-east-1", **_keys()
                ).create_bucket(Bucket=BUCKET)
                seed = work / "seed"
                seed.mkdir()
                (seed / "models.toml").write_text(
                    f'[models.fleet]\nsource = "hf://{REPO}"\ninclude = ["*"]\n\n'
                    f'[remotes.team]\ntype = "s3"\nbucket = "{BUCKET}"\n'
                    f'endpoint-url = "{endpoint}"\n'
                )
                env = _env(hub, endpoint, work, work / "store-seed")
                for step in ("sync", "push"):
                    _check(_modelsync([step], seed, env), f"the seeding {step}")
                upstream = hub.repos.counters.bytes_sent()
                for count in machines:
                    walls = _fleet(count, seed, hub, endpoint, work)
                    served = hub.repos.counters.bytes_sent() - upstream
                    per_blob = (upstream + served) / size
                    upstream += served
                    rows.append(
                        FleetRow(
                            "s3 remote",
                            count,
                            per_blob,
                            statistics.median(walls),
                            max(walls),
                        )
                    )
        finally:
            hub.close()
    return rows


def _keys() -> dict[str, str]:
    return {
        "aws_access_key_id": KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": KEYS["AWS_SECRET_ACCESS_KEY"],
    }


def _fleet(count: int, seed: Path, hub: ServerHandle, endpoint: str, work: Path) -> list[float]:
    """`count` machines, each a copy of the project with an empty store, synced at once;
    the wall seconds of each."""
    procs = []
    for index in range(count):
        folder = work / f"n{count}-m{index}"
        folder.mkdir()
        for name in ("models.toml", "models.lock"):
            shutil.copy(seed / name, folder / name)
        env = _env(hub, endpoint, work, work / f"store-n{count}-m{index}")
        procs.append((time.perf_counter(), _modelsync(["sync", "--frozen"], folder, env)))
    ended: dict[int, float] = {}
    while len(ended) < count:  # each machine's own wall time, whatever order they end in
        for index, (_, proc) in enumerate(procs):
            if index not in ended and proc.poll() is not None:
                ended[index] = time.perf_counter()
        time.sleep(0.01)
    for _, proc in procs:
        _check(proc, "a fleet machine's sync")
    walls = [ended[i] - started for i, (started, _) in enumerate(procs)]
    for index in range(count):  # free the disk before the next size
        shutil.rmtree(work / f"n{count}-m{index}")
        shutil.rmtree(work / f"store-n{count}-m{index}")
    return walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64, help="MiB in the lock (default 64)")
    parser.add_argument("--files", type=int, default=4, help="files in the lock (default 4)")
    parser.add_argument("--machines", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    rows = remote_rows(args.machines, args.size * MIB, args.files)
    print(f"fleet through one S3 remote (moto): {args.size} MiB in {args.files} files")
    print(f"  {'setup':<10} {'machines':>8} {'upstream/blob':>14} {'wall median':>12} {'max':>8}")
    for r in rows:
        print(
            f"  {r.setup:<10} {r.machines:>8} {r.upstream_per_blob:>14.2f} "
            f"{r.wall_median:>10.2f} s {r.wall_max:>6.2f} s"
        )


if __name__ == "__main__":
    main()
