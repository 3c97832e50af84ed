"""Fleet benchmark: N machines syncing one lock through one LAN mirror with pull-through.

    .venv/bin/python -m benchmarks.fleet [--size-mib 64] [--files 2] [--machines 1,4,16]

An upstream hub (the project's server, in this process) serves `--files` seeded random files,
`--size-mib` in all. For each N, a mirror `modelsync serve --lock ... --pull-through UPSTREAM`
starts as a subprocess on an empty store, then N `modelsync sync --frozen` processes start at
once, each a "machine" with its own store and project (a copy of one lock), `HF_ENDPOINT` the
mirror. Printed per N:

  upstream/blob   bytes upstream sent (its own counters) / bytes of the locked blobs: 1.00 means
                  each blob crossed the WAN once, whatever N
  machine s       wall time of each machine's sync: median and max
  mirror MB/s     bytes the N machines received / wall time of the round

and, for the largest N, a second round on the now warm mirror (no upstream traffic): the
mirror's throughput to that many concurrent clients. Rows come from functions (`mirror_rows`)
so the S3 remote's rounds (benchmarks/fleet_remote.py: seed one bucket from upstream with
`sync` + `push`, then N machines sync from it) print in the same table; `--no-remote` leaves
them out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import transfer
from benchmarks.transfer import PY, bench_env, make_file
from modelsync.log import configure
from modelsync.server.runner import ServerConfig, ServerHandle, start_in_thread

WORK = transfer.ROOT / ".bench" / "fleet"
REPO = "bench/fleet"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the fleet table."""

    setup: str
    machines: int
    upstream_per_blob: float
    median_s: float
    max_s: float
    mb_s: float


@contextmanager
def mirror(lock: Path, store: Path, upstream: str) -> Iterator[str]:
    """`modelsync serve --lock LOCK --pull-through UPSTREAM` as a process; its endpoint."""
    log = (WORK / "mirror.log").open("w")
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "modelsync",
            "--json",
            "--store",
            str(store),
            "serve",
            "--port",
            "0",
            "--lock",
            str(lock),
            "--pull-through",
            upstream,
        ],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    drain = threading.Thread(target=log.writelines, args=(proc.stdout,), daemon=True)
    try:
        endpoint = next(
            (e["endpoint"] for e in map(json.loads, proc.stdout) if e.get("command") == "serve"),
            None,
        )
        if endpoint is None:
            raise SystemExit(f"benchmark: the mirror did not start (see {log.name})")
        # Its JSON log lines follow on stdout: drained, or a full pipe would stall the server.
        drain.start()
        yield str(endpoint)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if drain.is_alive():
            drain.join(timeout=10)
        log.close()


def _machine(n: int, lock: Path, env: dict[str, str]) -> float:
    """One machine: a fresh project holding the lock and a fresh store; its sync's wall time."""
    folder = WORK / "machines" / f"m{n:02d}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copy(lock.with_name("models.toml"), folder / "models.toml")
    shutil.copy(lock, folder / "models.lock")
    started = time.perf_counter()
    proc = subprocess.run(
        transfer.sync_command(folder / "models.toml", folder / "store"),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark: machine {n} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return seconds


def _round(setup: str, machines: int, lock: Path, endpoint: str, hub: ServerHandle) -> Row:
    total = sum(f.stat().st_size for f in (WORK / "hub" / REPO).glob("*.bin"))
    sent = hub.counters.bytes_sent(REPO)
    env = bench_env(endpoint)
    started = time.perf_counter()
    with ThreadPoolExecutor(machines) as pool:
        seconds = list(pool.map(lambda n: _machine(n, lock, env), range(machines)))
    wall = time.perf_counter() - started
    shutil.rmtree(WORK / "machines", ignore_errors=True)
    return Row(
        setup,
        machines,
        (hub.counters.bytes_sent(REPO) - sent) / total,
        statistics.median(seconds),
        max(seconds),
        machines * total / wall / 1e6,
    )


def mirror_rows(size: int, files: int, counts: list[int]) -> list[Row]:
    """The LAN mirror's rows: a cold round per N, then a warm round at the largest N."""
    hub_root = WORK / "hub"
    for i in range(files):
        make_file(hub_root / REPO / f"part-{i}.bin", size // files, seed=11 + i)
    rows = []
    with start_in_thread(ServerConfig(root=hub_root)) as hub:
        project = WORK / "project"
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        manifest = project / "models.toml"
        manifest.write_text(f'[models.fleet]\nsource = "hf://{REPO}"\ninclude = ["*.bin"]\n')
        subprocess.run(
            [PY, "-m", "modelsync", "-q", "lock", "-m", str(manifest)],
            check=True,
            env=bench_env(hub.endpoint),
        )
        lock = project / "models.lock"
        for n in counts:
            store = WORK / "mirror-store"
            shutil.rmtree(store, ignore_errors=True)
            with mirror(lock, store, hub.endpoint) as endpoint:
                rows.append(_round("mirror, cold", n, lock, endpoint, hub))
                if n == max(counts):
                    rows.append(_round("mirror, warm", n, lock, endpoint, hub))
        shutil.rmtree(WORK / "mirror-store", ignore_errors=True)
    return rows


def remote_rows(size: int, files: int, counts: list[int]) -> list[Row]:
    """The S3 remote's rounds (benchmarks/fleet_remote.py), as rows of this table."""
    from benchmarks import fleet_remote  # noqa: PLC0415 - needs the s3 extra and moto

    return [
        Row(
            r.setup,
            r.machines,
            r.upstream_per_blob,
            r.wall_median,
            r.wall_max,
            r.machines * size / r.wall_max / 1e6,
        )
        for r in fleet_remote.remote_rows(counts, size, files)
    ]


def print_rows(title: str, rows: list[Row]) -> None:
    """The table, in Markdown."""
    print(f"# {title}")
    print("| setup | machines | upstream bytes / blob bytes | machine s median | max | MB/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r.setup} | {r.machines} | {r.upstream_per_blob:.2f} | {r.median_s:.2f} "
            f"| {r.max_s:.2f} | {r.mb_s:.0f} |"
        )


def main() -> None:
    """Run the rounds and print one table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=64, help="locked bytes in all (64)")
    parser.add_argument("--files", type=int, default=2, help="files they are split into (2)")
    parser.add_argument("--machines", default="1,4,16", help="N values (1,4,16)")
    parser.add_argument("--no-remote", action="store_true", help="only the mirror's rounds")
    args = parser.parse_args()
    configure(json=True, verbosity=-1, stream=sys.stderr)  # the in-process upstream: quiet
    WORK.mkdir(parents=True, exist_ok=True)
    counts = [int(n) for n in args.machines.split(",")]
    rows = mirror_rows(args.size_mib << 20, args.files, counts)
    if not args.no_remote:
        rows += remote_rows(args.size_mib << 20, args.files, counts)
    print_rows(f"Fleet: {args.size_mib} MiB in {args.files} files, one host", rows)


if __name__ == "__main__":
    main()
