"""Measure one model in a child process: `python -m modelsync.bench.runner '<json>'`.

The child loads the file with llama-cpp-python once per repetition and times, like llama-bench,
the load, one prompt of `n_prompt` tokens decoded in batches, and `n_gen` single-token decodes
from an empty context; it prints one JSON object on the stdout it was given. llama.cpp runs in
native code, where a segfault, an abort or the OOM killer takes the whole process down: the
parent (`measure`) turns each of those into a one-line failure of that model only.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelsync.bench.model import Runs, Settings

REBUILD_HINT = (
    "a llama.cpp built for this CPU's native instructions crashes on CPUs with AMX: rebuild it "
    'with CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir '
    "llama-cpp-python (or MODELSYNC_WITH_BENCH=1 scripts/install)"
)
_OUTPUT_LIMIT = 1 << 20


class ChildFailedError(Exception):
    """The child did not deliver a measurement: the message and the fix, one line each."""

    def __init__(self, problem: str, hint: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.hint = hint


def child_command(path: Path, settings: Settings) -> list[str]:
    """The argv of the child measuring `path` with `settings`."""
    job = {"path": str(path), "settings": settings.as_dict()}
    return [sys.executable, "-m", "modelsync.bench.runner", json.dumps(job)]


def measure(path: Path, settings: Settings, *, timeout: float) -> Runs:
    """Run the child on `path`; ChildFailedError says why when it crashed, failed or timed out."""
    try:
        done = subprocess.run(  # noqa: S603  our own module under this interpreter, no shell
            child_command(path, settings),
            capture_output=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise ChildFailedError(
            f"{path}: the measurement did not finish within {timeout:g} s (stopped)",
            hint="pass a larger --timeout, or smaller --n-prompt/--n-gen/--repetitions",
        ) from exc
    return runs_from(done.returncode, done.stdout, done.stderr, path)


def runs_from(returncode: int, stdout: bytes, stderr: bytes, path: Path) -> Runs:
    """The child's answer, or ChildFailedError naming the signal or the error it reported."""
    if returncode < 0:
        name = _signal_name(-returncode)
        if -returncode == signal.SIGKILL:
            raise ChildFailedError(
                f"{path}: the llama.cpp child was killed ({name}), most likely out of memory",
                hint="free memory, or pass smaller --ctx or --gpu-layers",
            )
        raise ChildFailedError(f"{path}: the llama.cpp child crashed ({name})", hint=REBUILD_HINT)
    answer = _last_json(stdout)
    if returncode != 0 or answer is None or "error" in answer:
        reason = answer.get("error") if answer else None
        if not reason:
            reason = _last_line(stderr) or f"exit status {returncode}, no result"
        raise ChildFailedError(
            f"{path}: llama.cpp could not measure it: {reason}",
            hint="check that the file is a complete GGUF model llama.cpp supports "
            "(`modelsync verify --full`, or upgrade llama-cpp-python)",
        )
    try:
        return Runs(
            load_s=tuple(float(v) for v in answer["load_s"]),
            pp_s=tuple(float(v) for v in answer["pp_s"]),
            tg_s=tuple(float(v) for v in answer["tg_s"]),
            peak_rss=int(answer["peak_rss"]),
            vram=None if answer.get("vram") is None else int(answer["vram"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ChildFailedError(
            f"{path}: the bench child answered {str(answer)[:200]!r}, not a measurement",
            hint="reinstall modelsync and llama-cpp-python in the same environment",
        ) from exc


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_json(stdout: bytes) -> dict[str, Any] | None:
    for line in reversed(stdout[-_OUTPUT_LIMIT:].decode("utf-8", "replace").splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        return value if isinstance(value, dict) else None
    return None


def _last_line(stderr: bytes) -> str:
    lines = stderr[-_OUTPUT_LIMIT:].decode("utf-8", "replace").strip().splitlines()
    return " ".join(lines[-1].split())[:300] if lines else ""


# ---- the child ---------------------------------------------------------------------------------


def _peak_rss() -> int:
    """This process's peak RSS in bytes (Linux counts KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def _vram_used() -> int | None:
    """GPU memory NVML says this process holds, over all GPUs; None without NVML."""
    try:
        pynvml = importlib.import_module("pynvml")  # only where a GPU may be
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001  no driver, no library: nothing to report
        return None
    try:
        used = None
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            for proc in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                    used = (used or 0) + int(proc.usedGpuMemory)
    except Exception:  # noqa: BLE001  NVML without per-process accounting (containers)
        return None
    else:
        return used
    finally:
        pynvml.nvmlShutdown()


def run_child(path: str, settings: Settings) -> dict[str, Any]:
    """Measure `settings.repetitions` times; the answer the parent reads."""
    # The optional extra, imported only here: the parent never loads native llama.cpp code.
    llama = importlib.import_module("llama_cpp").Llama

    rng = random.Random(0)  # noqa: S311  benchmark tokens, not secrets; the same tokens every run: results compare across runs
    load_s, pp_s, tg_s = [], [], []
    vram: int | None = None
    for _ in range(settings.repetitions):
        start = time.perf_counter()
        llm = llama(
            model_path=path,
            n_ctx=settings.ctx,
            n_gpu_layers=settings.gpu_layers,
            verbose=False,
        )
        load_s.append(time.perf_counter() - start)
        # llama-bench: the prompt starts with BOS, then random tokens; generation feeds one
        # random token at a time into an empty context. No sampling, so only decode is timed.
        n_vocab = llm.n_vocab()
        prompt = [llm.token_bos()] + [rng.randrange(n_vocab) for _ in range(settings.n_prompt - 1)]
        start = time.perf_counter()
        llm.eval(prompt)
        pp_s.append(time.perf_counter() - start)
        llm.reset()
        tokens = [rng.randrange(n_vocab) for _ in range(settings.n_gen)]
        start = time.perf_counter()
        for token in tokens:
            llm.eval([token])
        tg_s.append(time.perf_counter() - start)
        used = _vram_used()
        if used is not None:
            vram = max(vram or 0, used)
        llm.close()
    return {
        "load_s": load_s,
        "pp_s": pp_s,
        "tg_s": tg_s,
        "peak_rss": _peak_rss(),
        "vram": vram,
    }


def main(argv: Sequence[str]) -> int:
    """The child's entry: one JSON job in argv[0], one JSON answer on the original stdout."""
    # Native code may print to fd 1; keep the answer's channel to ourselves.
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    try:
        job = json.loads(argv[0])
        settings = Settings(**job["settings"])
        answer = run_child(str(job["path"]), settings)
        code = 0
    except Exception as exc:  # noqa: BLE001  every failure goes back to the parent as one line
        answer = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())}"}
        code = 1
    with os.fdopen(answer_fd, "w", encoding="utf-8") as out:
        out.write(json.dumps(answer) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
