"""Lock benchmark: 50 models against the local Hub server behind ~50 ms of latency per request.

    .venv/bin/python benchmarks/lock_bench.py [--models 50] [--latency-ms 50]
    .venv/bin/python benchmarks/lock_bench.py --explain-7b   # `lock --explain`, synthetic 7B repo

A proxy in front of the project's server sleeps `latency` before forwarding each request and
records how long every request took. The figures: wall time of `lock` (default concurrency, and
16 at a time) versus the sequential sum of the requests' durations (measured in a run with one
model at a time, whose wall is printed too), and the ideal: the longest chain of dependent
requests of one model (listing, then header).

`--explain-7b` writes a llama-shaped 7B repo (Q3_K_M … Q8_0, real sizes, sparse files: the
tensor data is holes) and prints `modelsync lock --explain` for a GPU and a laptop profile.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelsync.cli.main import main as cli_main  # noqa: E402
from modelsync.lock.driver import DEFAULT_JOBS  # noqa: E402
from modelsync.log import configure  # noqa: E402
from modelsync.net.retry import RetryPolicy  # noqa: E402
from modelsync.ops.lock import LockRequest, lock_project  # noqa: E402
from modelsync.server.runner import ServerConfig, start_in_thread  # noqa: E402
from modelsync.testing.gguf_files import write_gguf  # noqa: E402

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class LatencyProxy:
    """An HTTP proxy on its own thread: waits `latency` s, forwards, records each duration."""

    def __init__(self, upstream: str, latency: float) -> None:
        self.upstream = upstream
        self.latency = latency
        self.durations: list[float] = []
        self.url = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", lambda r: self._forward(r, session))
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

    async def _forward(self, request: web.Request, session: aiohttp.ClientSession) -> web.Response:
        started = time.perf_counter()
        await asyncio.sleep(self.latency)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with session.request(
            request.method,
            self.upstream + request.rel_url.path_qs,
            headers=headers,
            data=await request.read() or None,
            allow_redirects=False,
        ) as answer:
            body = await answer.read()
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        self.durations.append(time.perf_counter() - started)
        return web.Response(status=answer.status, headers=out, body=body)


def write_repos(root: Path, count: int) -> None:
    """`count` small GGUF repos `bench/model-NN` (three quants each) under a server root."""
    for index in range(count):
        folder = root / "bench" / f"model-{index:02d}"
        folder.mkdir(parents=True)
        for quant in ("Q4_K_M", "Q6_K", "Q8_0"):
            write_gguf(
                folder / f"model-{index:02d}-{quant}.gguf",
                quant=quant,
                name=f"m{index}",
                n_embd=256,
                n_ff=256,
                n_vocab=300,
            )
        (folder / "README.md").write_text(f"# model {index}\n")


def _serve(root: Path, latency: float, conn: Connection) -> None:
    """Child process: the server and the latency proxy, answering "durations" and "stop"."""
    handle = start_in_thread(ServerConfig(root=root))
    try:
        with LatencyProxy(handle.endpoint, latency) as proxy:
            conn.send(proxy.url)
            while (message := conn.recv()) != "stop":
                if message == "durations":
                    conn.send(list(proxy.durations))
                    proxy.durations.clear()
    finally:
        handle.close()


@contextmanager
def remote_hub(root: Path, latency: float) -> Iterator[tuple[str, Connection]]:
    """Server and proxy in a child process, so they never compete with `lock` for the GIL."""
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(root, latency, child), daemon=True
    )
    process.start()
    try:
        yield parent.recv(), parent
    finally:
        parent.send("stop")
        process.join(30)


def run_lock(manifest: Path, jobs: int) -> tuple[float, int]:
    """Lock from scratch; returns (seconds, requests)."""
    manifest.with_name("models.lock").unlink(missing_ok=True)
    request = LockRequest(manifest=manifest, jobs=jobs, retry=RetryPolicy(attempts=1))
    started = time.perf_counter()
    report = asyncio.run(lock_project(request))
    return time.perf_counter() - started, report.requests


def bench(models: int, latency_ms: float) -> None:
    """Print the lock figures for `models` models behind `latency_ms` of latency."""
    with tempfile.TemporaryDirectory(prefix="modelsync-lock-bench-") as tmp:
        work = Path(tmp)
        write_repos(work / "hub", models)
        with remote_hub(work / "hub", latency_ms / 1000) as (proxy_url, proxy):
            manifest = work / "project" / "models.toml"
            manifest.parent.mkdir()
            manifest.write_text(
                f'[registries.bench]\ntype = "huggingface"\nendpoint = "{proxy_url}"\n'
                '[profiles.gpu]\nram = "32GiB"\nvram = "24GiB"\n'
                + "".join(
                    f'[models.m{i:02d}]\nsource = "bench://bench/model-{i:02d}"\n'
                    for i in range(models)
                )
            )
            run_lock(manifest, jobs=DEFAULT_JOBS)  # warm up: imports, server caches
            wall, requests = run_lock(manifest, jobs=DEFAULT_JOBS)
            wall16, _ = run_lock(manifest, jobs=16)
            proxy.send("durations")
            proxy.recv()
            serial_wall, _ = run_lock(manifest, jobs=1)
            proxy.send("durations")
            durations: list[float] = proxy.recv()
        total = sum(durations)
        slowest = max(durations)
        print(f"lock benchmark: {models} models, {latency_ms:.0f} ms injected latency per request")
        print(f"  requests                     {requests} ({requests // models} per model)")
        print(f"  slowest request (serial run) {slowest * 1000:8.1f} ms")
        print(f"  ideal (2 requests in chain)  {2 * latency_ms:8.1f} ms")
        print(f"  wall (default, {DEFAULT_JOBS} at a time)  {wall * 1000:8.1f} ms")
        print(f"  sequential sum of requests   {total * 1000:8.1f} ms")
        print(f"  wall, 16 models at a time    {wall16 * 1000:8.1f} ms")
        print(f"  wall, one model at a time    {serial_wall * 1000:8.1f} ms")
        print(f"  speed-up vs sequential sum   {total / wall:8.1f} x")


def write_sparse_gguf(path: Path, quant: str) -> int:
    """A llama 7B GGUF (Mistral-7B shape) whose tensor data is a hole; returns its size."""
    import gguf  # noqa: PLC0415  dev dependency
    import numpy as np  # noqa: PLC0415  dev dependency

    from modelsync.testing.gguf_files import _BLOCKS, SyntheticModel  # noqa: PLC0415

    model = SyntheticModel(
        quant=quant,
        name="Synthetic-7B",
        n_layers=32,
        n_embd=4096,
        n_ff=14336,
        n_head=32,
        n_head_kv=8,
        n_vocab=32000,
        context_length=32768,
    )
    writer = gguf.GGUFWriter(path, model.arch)
    for key, kv in model.metadata().items():
        item = gguf.GGUFValueType[kv.item_type] if kv.item_type else None
        writer.add_key_value(key, kv.value, gguf.GGUFValueType[kv.value_type], sub_type=item)
    data = 0
    for tensor in model.tensors():
        block, size = _BLOCKS[tensor.ggml_type]
        shape = (*reversed(tensor.dims[1:]), tensor.dims[0] // block * size)
        writer.add_tensor_info(
            tensor.name,
            shape,
            np.dtype(np.uint8),
            tensor.n_bytes,
            raw_dtype=gguf.GGMLQuantizationType[tensor.ggml_type],
        )
        data += gguf.GGUFWriter.ggml_pad(tensor.n_bytes, writer.data_alignment)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    assert writer.fout is not None
    fout = writer.fout[0]
    writer.write_padding(fout, fout.tell())
    header = fout.tell()
    writer.close()
    os.truncate(path, header + data)
    return header + data


def explain_7b(keep: Path | None) -> None:
    """Print `modelsync lock --explain` for a synthetic 7B repo under a GPU and a laptop profile."""
    work = keep or Path(tempfile.mkdtemp(prefix="modelsync-7b-"))
    try:
        repo = work / "hub" / "synthetic" / "Synthetic-7B-GGUF"
        repo.mkdir(parents=True, exist_ok=True)
        for quant in ("Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0"):
            target = repo / f"Synthetic-7B-{quant}.gguf"
            if not target.exists():
                write_sparse_gguf(target, quant)
        # Importing 27 GB takes longer than the server's start timeout: import after it started.
        handle = start_in_thread(ServerConfig(root=work / "hub", rescan_on_start=False))
        try:
            handle.repos.import_directory("synthetic/Synthetic-7B-GGUF")
            project = work / "project"
            project.mkdir(exist_ok=True)
            manifest = project / "models.toml"
            manifest.write_text(
                "[profiles.gpu8]\n"
                'vram = "8GiB"\n'
                'ram = "32GiB"\n'
                "[profiles.laptop]\n"
                'ram = "16GiB"\n'
                "\n"
                "[models.synth7b]\n"
                'source = "hf://synthetic/Synthetic-7B-GGUF"\n'
                "context = 8192\n"
            )
            os.environ["HF_ENDPOINT"] = handle.endpoint
            print(f"$ modelsync lock --explain   (HF_ENDPOINT={handle.endpoint})")
            code = cli_main(["-q", "-m", str(manifest), "lock", "--explain"])
            print(f"exit {code}\n\n$ cat models.lock")
            print((project / "models.lock").read_text())
        finally:
            handle.close()
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    """Parse flags and run the benchmark (or the 7B explain demo)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--explain-7b", action="store_true", help="print lock --explain for 7B")
    parser.add_argument("--keep", type=Path, help="with --explain-7b: work here and keep files")
    args = parser.parse_args()
    configure(json=False, verbosity=-1, stream=sys.stderr)
    if args.explain_7b:
        explain_7b(args.keep)
    else:
        bench(args.models, args.latency_ms)


if __name__ == "__main__":
    main()
