"""`modelsync bench`: run llama-cpp-python on the locked GGUF files."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)
    parser.add_argument("--profile", metavar="NAME", help="which of the lock's profiles to bench")
    parser.add_argument("--n-prompt", type=int, default=512, metavar="N", help="prompt tokens")
    parser.add_argument("--n-gen", type=int, default=128, metavar="N", help="generated tokens")
    parser.add_argument(
        "--ctx", type=int, metavar="N", help="context size (default: n-prompt + n-gen)"
    )
    parser.add_argument(
        "--gpu-layers",
        type=int,
        metavar="N",
        help="layers to offload, -1 all (default: all with a GPU, else 0)",
    )
    parser.add_argument(
        "--repetitions", type=int, default=3, metavar="N", help="runs per model (mean ± std)"
    )
    parser.add_argument("--force", action="store_true", help="measure again even if results exist")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, metavar="S", help="seconds per model at most"
    )


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.bench.report import table  # noqa: PLC0415 - see base.LAZY_OPS
    from modelsync.bench.results import result_dict  # noqa: PLC0415
    from modelsync.ops.bench import BenchRequest, bench_project  # noqa: PLC0415

    outcome = bench_project(
        BenchRequest(
            manifest=opts.manifest,
            store=opts.store,
            models=tuple(args.model),
            profile=args.profile,
            n_prompt=args.n_prompt,
            n_gen=args.n_gen,
            ctx=args.ctx,
            gpu_layers=args.gpu_layers,
            repetitions=args.repetitions,
            force=args.force,
            timeout=args.timeout,
            environ=dict(os.environ),
        )
    )
    if outcome.rows:
        for text in table(outcome.rows):
            out.line(text)
    reused = [row.result.model for row in outcome.rows if row.reused]
    measured = [row.result.model for row in outcome.rows if not row.reused]
    summary = f"benched {len(outcome.rows)} models: {len(measured)} measured, {len(reused)} reused"
    if reused:
        summary += " (same files, machine, llama-cpp-python and settings; --force measures again)"
    out.line(f"{summary}; results in {outcome.bench_file}")
    for name in outcome.skipped:
        out.line(f"  skipped {name}: no GGUF file")
    for failure in outcome.failures:
        out.line(f"  failed {failure.model}: {failure.line()}")
    out.report(
        "bench",
        ok=not outcome.failures,
        results=[
            {
                **result_dict(row.result),
                "reused": row.reused,
                "change": asdict(row.change) if row.change else None,
            }
            for row in outcome.rows
        ],
        failed=[
            {"model": f.model, "file": f.file, "problem": f.problem, "hint": f.hint}
            for f in outcome.failures
        ],
        skipped=list(outcome.skipped),
        llama_cpp=outcome.llama_cpp,
        hardware=outcome.hardware,
        bench_file=str(outcome.bench_file),
        written=outcome.written,
    )
    outcome.raise_failures()
    return 0


COMMAND = Command("bench", "benchmark locked GGUF files with llama.cpp", add_arguments, run)
