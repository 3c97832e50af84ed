"""Transfer benchmark: modelsync's engine against curl and huggingface_hub, in the same run.

    .venv/bin/python -m benchmarks.transfer [--runs 5] [--sizes 2g,200m] [--settle 3]

Serves seeded random files from `modelsync serve` on 127.0.0.1 and times whole processes (fork
to reap), each preceded by `sync` and a pause so every run looks like a first download
(notes/baselines.md, "Comparing fairly"). Rows:

  python+aiohttp  `python -c "import aiohttp"`: what any aiohttp downloader in Python (the
                  reference (d) included) pays before its first byte: the floor for row (d)
  start-up        `python -c "import modelsync.fetch.download"`: the interpreter and the
                  engine's imports, which every CLI run pays before its first byte
  curl            `curl -o FILE` (no hash)                                      yardstick (b)
  curl+fsync      `curl -o FILE && sync FILE`: the same bytes made durable (modelsync records
                  an unsynced blob as pending instead and re-hashes it after a reboot)
  modelsync×1     the same with `--connections 1` (one stream instead of byte ranges)
  modelsync       `modelsync sync --frozen` of a lock pinning the file: download (read into
                  reused buffers) + SHA-256 in a worker thread + rename into a fresh store +
                  hardlink into the project
  hf              `hf_hub_download` (checks only the size)                      yardstick (f)
  hf+sha256       `hf_hub_download`, then hashlib over the file                  yardstick (f')
  reference (d)   the reference downloader of notes/baselines.md (aiohttp, hash in a thread;
                  only with ../shared/bench-reference present): this machine against that one
  ranges×4        the reference script's 4 parallel Range parts + prefix hash (same
                  condition): does splitting one file pay here?
  resume@50%      `modelsync sync` killed with SIGKILL at half, then re-run: bytes re-sent

Targets (issue #13 and design), each printed with pass or FAIL: at 2 GiB and at 200 MiB
modelsync ≤ 1.05× reference (d) and ≤ 1.25× curl; at 2 GiB ≥ 4× faster than hf+sha256; peak
RSS < 100 MiB; resume re-sends ≤ 52 % of the file. The load average is printed before and
after: the machine may be shared, so compare rows of one run (interleaved), not runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".bench" / "transfer"
REPO = "bench/rand"
SIZES = {"2g": 2 << 30, "200m": 200 << 20}
PY = sys.executable
GNU_TIME = "/usr/bin/time"
# Beside the checkout (/work/main), or two levels up from a worktree (/work/wt/<name>).
REFERENCE = next(
    (
        path
        for base in (ROOT.parent, ROOT.parent.parent)
        if (path := base / "shared" / "bench-reference" / "dl_aiohttp.py").exists()
    ),
    ROOT.parent / "shared" / "bench-reference" / "dl_aiohttp.py",
)

HF_SCRIPT = """
import hashlib, sys
from huggingface_hub import hf_hub_download
path = hf_hub_download(sys.argv[1], sys.argv[2], cache_dir=sys.argv[3], endpoint=sys.argv[4])
if sys.argv[5] == "hash":
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    print(h.hexdigest())
"""


@dataclass(frozen=True)
class Sample:
    """One timed process."""

    seconds: float
    max_rss_kib: int
    stdout: str


def make_file(path: Path, size: int, seed: int) -> str:
    """Seeded random bytes (made once, kept across runs) and their SHA-256."""
    sidecar = path.with_suffix(".sha256")
    if path.exists() and path.stat().st_size == size and sidecar.exists():
        return sidecar.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        left = size
        while left:
            chunk = rng.randbytes(min(left, 8 << 20))
            handle.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    sidecar.write_text(digest.hexdigest())
    return digest.hexdigest()


def timed(cmd: list[str], env: dict[str, str] | None = None) -> Sample:
    """Run a whole process under GNU time; wall time and the command's own peak RSS.

    GNU time forks the command from its own small process: rusage taken here directly would
    include the pages this Python process had before the child's exec.
    """
    rss_file = WORK / "rss.txt"
    started = time.perf_counter()
    proc = subprocess.run(
        [GNU_TIME, "-o", str(rss_file), "-f", "%M", *cmd],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"benchmark: {cmd[:3]} failed ({proc.returncode}): {proc.stderr[-500:]}")
    return Sample(seconds, int(rss_file.read_text().split()[-1]), proc.stdout)


def warm(url: str) -> None:
    """Fetch the file once to /dev/null, untimed: this VM's free-memory reclaim (kdamond) evicts
    page cache between runs, and a row whose server had to read the disk would measure the disk."""
    subprocess.run(["curl", "-sSf", "-o", os.devnull, url], check=True)


def settle(seconds: float, *paths: Path) -> None:
    """Delete outputs, flush dirty pages and wait: every run starts like a first download."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    os.sync()
    time.sleep(seconds)


def start_server(root: Path) -> tuple[subprocess.Popen[str], str]:
    """`modelsync serve` as a real process; returns it and its endpoint."""
    proc = subprocess.Popen(
        [PY, "-m", "modelsync", "--json", "-q", "serve", "--root", str(root), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        event = json.loads(line)
        if event.get("command") == "serve":
            return proc, str(event["endpoint"])
    raise SystemExit("benchmark: modelsync serve did not start")


def verdict(label: str, value: float, target: str, ok: bool) -> str:
    """One line of the summary."""
    return f"{label} = {value:.2f} (target {target}) {'pass' if ok else 'FAIL'}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (other work on a shared machine skews rows)."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def median(samples: list[Sample]) -> float:
    """Median wall time."""
    return statistics.median(s.seconds for s in samples)


def make_project(name: str, endpoint: str, env: dict[str, str]) -> Path:
    """A project whose lock pins one file of the bench repo (locked once, untimed)."""
    project = WORK / f"project-{name}"
    shutil.rmtree(project, ignore_errors=True)
    project.mkdir(parents=True)
    manifest = project / "models.toml"
    manifest.write_text(f'[models.rand]\nsource = "hf://{REPO}"\ninclude = ["rand-{name}.bin"]\n')
    subprocess.run(
        [PY, "-m", "modelsync", "-q", "lock", "-m", str(manifest)],
        check=True,
        env={**env, "HF_ENDPOINT": endpoint},
        stdout=subprocess.DEVNULL,
    )
    return manifest


def sync_command(manifest: Path, store: Path, *extra: str) -> list[str]:
    """The timed command: what a user runs."""
    return [
        PY,
        "-m",
        "modelsync",
        "--json",
        "-q",
        "sync",
        "--frozen",
        "-m",
        str(manifest),
        "--store",
        str(store),
        *extra,
    ]


def bench_env(endpoint: str) -> dict[str, str]:
    """No adoption from caches (every run downloads), Hub settings for the official client."""
    return {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HOME": str(WORK / "hf-home"),
        "HF_HUB_CACHE": str(WORK / "hf-cache-empty"),
        "OLLAMA_MODELS": str(WORK / "ollama-empty"),
    }


def bench_size(
    name: str, sha: str, endpoint: str, *, runs: int, pause: float
) -> dict[str, list[Sample]]:
    """All rows for one file size."""
    url = f"{endpoint}/{REPO}/resolve/main/rand-{name}.bin"
    out = WORK / "out.bin"
    store = WORK / "store"
    cache = WORK / "hf-cache"
    env = bench_env(endpoint)
    manifest = make_project(name, endpoint, env)
    placed = manifest.parent / "models"
    commands = {
        "python+aiohttp": ([PY, "-c", "import aiohttp"], out),
        "start-up": ([PY, "-c", "import modelsync.fetch.download"], out),
        "curl": (["curl", "-sSf", "-o", str(out), url], out),
        # The durable yardstick, for comparison with the pending-blob scheme (store/state.py).
        "curl+fsync": (["sh", "-c", f"curl -sSf -o '{out}' '{url}' && sync '{out}'"], out),
        "modelsync": (sync_command(manifest, store), store),
        # One stream, beside the default byte ranges (--connections 8 for files of 8 MiB or
        # more): whether splitting pays on this link.
        "modelsync×1": (sync_command(manifest, store, "--connections", "1"), store),
        "hf": (
            [PY, "-c", HF_SCRIPT, REPO, f"rand-{name}.bin", str(cache), endpoint, "none"],
            cache,
        ),
        "hf+sha256": (
            [PY, "-c", HF_SCRIPT, REPO, f"rand-{name}.bin", str(cache), endpoint, "hash"],
            cache,
        ),
    }
    if REFERENCE.exists():
        # Row (d) of notes/baselines.md (0.85× curl on the machine those notes were measured
        # on): how this machine compares with that one, beside the ranges question.
        commands["reference (d)"] = ([PY, str(REFERENCE), url, str(out), "thread"], out)
        commands["ranges×4"] = ([PY, str(REFERENCE), url, str(out), "ranges", "--parts", "4"], out)
    rows: dict[str, list[Sample]] = {row: [] for row in commands}
    for run in range(runs + 1):  # the first round is a warm-up
        for row, (cmd, output) in commands.items():
            if row.startswith("modelsync"):
                settle(0, placed)
            settle(pause, output)
            warm(url)
            sample = timed(cmd, env)
            if row == "hf+sha256" and sample.stdout.strip() != sha:
                raise SystemExit("benchmark: hf_hub_download returned other bytes")
            if run:
                rows[row].append(sample)
    settle(0, out, store, cache)
    return rows


def _written(tmp: Path) -> int:
    """Bytes written into the largest partial: its allocated blocks, since a download in byte
    ranges preallocates the whole file (sparse), so its size says nothing."""
    if not tmp.exists():
        return 0
    return max(
        (min(p.stat().st_blocks * 512, p.stat().st_size) for p in tmp.glob("*.part")), default=0
    )


def bench_resume(name: str, size: int, endpoint: str, pause: float) -> tuple[int, int]:
    """Kill a sync at half with SIGKILL; return (bytes on disk, bytes the re-run received)."""
    store = WORK / "store"
    env = bench_env(endpoint)
    manifest = make_project(name, endpoint, env)
    settle(pause, store, manifest.parent / "models")
    warm(f"{endpoint}/{REPO}/resolve/main/rand-{name}.bin")
    cmd = sync_command(manifest, store)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    tmp = store / "tmp"
    kept = 0
    while kept < size // 2 and proc.poll() is None:
        time.sleep(0.002)
        kept = _written(tmp)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = _written(tmp)
    second = timed(cmd, env)
    [report] = [e for e in map(json.loads, second.stdout.splitlines()) if e["event"] == "report"]
    received = int(report["bytes_fetched"])
    settle(0, store)
    return kept, received


def size_verdicts(name: str, rows: dict[str, list[Sample]]) -> list[str]:
    """The ratios and targets for one file size."""
    out: list[str] = []
    ms, curl = median(rows["modelsync"]), median(rows["curl"])
    startup = median(rows["start-up"])
    hf, hfh = median(rows["hf"]), median(rows["hf+sha256"])
    rss = max(s.max_rss_kib for s in rows["modelsync"]) / 1024
    out.append(verdict(f"{name}: modelsync/curl", ms / curl, "≤ 1.25", ms / curl <= 1.25))
    corrected = (ms - startup) / curl
    out.append(f"{name}: (modelsync - start-up)/curl = {corrected:.2f}")
    floor = median(rows["python+aiohttp"])
    out.append(f"{name}: (python+aiohttp import)/curl = {floor / curl:.2f}")
    single = median(rows["modelsync×1"])
    out.append(f"{name}: modelsync (ranges)/modelsync×1 = {ms / single:.2f}")
    if "reference (d)" in rows:
        reference = median(rows["reference (d)"])
        out.append(f"{name}: reference (d)/curl = {reference / curl:.2f}")
        ratio = ms / reference
        out.append(verdict(f"{name}: modelsync/reference (d)", ratio, "≤ 1.05", ratio <= 1.05))
    durable = median(rows["curl+fsync"])
    out.append(f"{name}: modelsync/(curl+fsync) = {ms / durable:.2f}")
    big_file = SIZES[name] >= 1 << 30
    out.append(f"{name}: hf/modelsync = {hf / ms:.2f}")
    out.append(
        verdict(
            f"{name}: (hf+sha256)/modelsync",
            hfh / ms,
            "≥ 4 at 2g",
            hfh / ms >= 4 or not big_file,
        )
    )
    out.append(verdict(f"{name}: modelsync peak RSS MiB", rss, "< 100", rss < 100))
    return out


def main() -> None:
    """Run the benchmark and print a table with ratios and targets."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5, help="timed runs per row (after 1 warm-up)")
    parser.add_argument("--sizes", default="2g,200m", help="comma-separated: 2g, 200m")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds to pause after sync")
    args = parser.parse_args()
    for tool in ("curl", GNU_TIME):
        if shutil.which(tool) is None:
            raise SystemExit(f"benchmark: {tool} is needed (apt-get install curl time)")
    hub = WORK / "hub"
    shas = {
        name: make_file(hub / REPO / f"rand-{name}.bin", SIZES[name], seed=i)
        for i, name in enumerate(args.sizes.split(","))
    }
    for sidecar in (hub / REPO).glob("*.sha256"):
        sidecar.rename(WORK / sidecar.name)  # keep the repo to the data files
    server, endpoint = start_server(hub)
    try:
        print(f"# transfer benchmark: {args.runs} runs per row (median), server {endpoint}")
        print(f"# {load_average()} at the start\n")
        print("| size | row | median s | min–max s | peak RSS MiB |")
        print("|---|---|---|---|---|")
        verdicts = []
        for name in args.sizes.split(","):
            rows = bench_size(name, shas[name], endpoint, runs=args.runs, pause=args.settle)
            for row, samples in rows.items():
                lo, hi = min(s.seconds for s in samples), max(s.seconds for s in samples)
                rss = max(s.max_rss_kib for s in samples) / 1024
                print(f"| {name} | {row} | {median(samples):.3f} | {lo:.3f}–{hi:.3f} | {rss:.0f} |")
            verdicts.extend(size_verdicts(name, rows))
        big = max(args.sizes.split(","), key=lambda n: SIZES[n])
        kept, received = bench_resume(big, SIZES[big], endpoint, args.settle)
        share = received / SIZES[big]
        print(f"| {big} | resume@50% | kept {kept} B | re-sent {received} B | {share:.1%} |")
        verdicts.append(verdict(f"{big}: resume re-sent share", share, "≤ 0.52", share <= 0.52))
        print("\n" + "\n".join(verdicts))
        print(f"{load_average()} at the end")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
