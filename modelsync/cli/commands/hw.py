"""`modelsync hw`: show the detected hardware profile and what fits."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output

if TYPE_CHECKING:
    from modelsync.ops.hw import HwReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    import asyncio  # noqa: PLC0415 - see base.LAZY_OPS

    from modelsync.ops.hw import HwRequest, show_hardware  # noqa: PLC0415

    request = HwRequest(
        # Read only with --model: `hw` alone works where there is no models.toml.
        manifest=opts.manifest if args.model else opts.new_manifest,
        models=tuple(args.model),
        offline=opts.offline,
        environ=dict(os.environ),
    )
    report = asyncio.run(show_hardware(request))
    render(report, out)
    return 0


def render(report: HwReport, out: Output) -> None:
    """The profile, its budgets, GPUs, notes, then a table per model."""
    from modelsync.resolve.explain import explain_lines  # noqa: PLC0415 - see base.LAZY_OPS
    from modelsync.resolve.model import gib  # noqa: PLC0415

    profile = report.profile
    out.line(f"profile: {profile.name} ({profile.source}), fingerprint {profile.fingerprint()}")
    flags = ", ".join(profile.cpu_flags) or "none detected"
    out.line(f"system: {profile.os} {profile.arch}, {profile.cpu_count or '?'} CPUs ({flags})")
    available = gib(profile.ram_available) if profile.ram_available is not None else "?"
    limit = f", container limit {gib(profile.ram_limit)}" if profile.ram_limit else ""
    out.line(f"ram: {gib(profile.ram_total)} total, {available} available{limit}")
    for gpu in profile.gpus:
        free = f", {gib(gpu.vram_free)} free" if gpu.vram_free is not None else ""
        out.line(f"gpu {gpu.index}: {gpu.name} ({gpu.backend}), {gib(gpu.vram_total)}{free}")
    if not profile.gpus:
        out.line("gpu: none")
    usable = f"{gib(report.budgets.ram)} RAM"
    if report.budgets.gpu:
        usable = f"{gib(report.budgets.gpu)} {report.budgets.resource}, {usable}"
    out.line(f"usable for models: {usable}")
    for note in profile.notes:
        out.line(f"note: {note}")
    for outcome in report.models:
        for item in outcome.explained:
            out.line("")
            for line in explain_lines(outcome.name, outcome.source, item.machine, item.choice):
                out.line(line)
    out.report(
        "hw",
        profile=profile.name,
        fingerprint=profile.fingerprint(),
        ram_total=profile.ram_total,
        ram_available=profile.ram_available,
        ram_limit=profile.ram_limit,
        gpus=[
            {"name": g.name, "vendor": g.vendor, "vram_total": g.vram_total, "backend": g.backend}
            for g in profile.gpus
        ],
        budget_gpu=report.budgets.gpu,
        budget_ram=report.budgets.ram,
        models=[
            {
                "name": o.name,
                "quant": item.choice.quant,
                "reason": item.choice.reason,
                "files": [f.path for f in item.choice.files],
            }
            for o in report.models
            for item in o.explained
        ],
    )


COMMAND = Command("hw", "show the hardware profile and what fits", add_arguments, run)
