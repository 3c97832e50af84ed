"""`modelsync status`: what sync would do, and whether the lock is fresh."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.commands.sync import plan_json, plan_lines, plan_summary
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output

if TYPE_CHECKING:
    from modelsync.ops.status import StatusReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)
    parser.add_argument("--profile", metavar="NAME", help="which of the lock's profiles to check")


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.status import StatusRequest, project_status  # noqa: PLC0415 - see base.LAZY_OPS

    report = project_status(
        StatusRequest(
            manifest=opts.manifest,
            store=opts.store,
            models=tuple(args.model),
            profile=args.profile,
            environ=dict(os.environ),
        )
    )
    render(report, out)
    return int(report.exit_code)


def render(report: StatusReport, out: Output) -> None:
    """The lock's freshness, each difference, and a verdict line."""
    if report.fresh:
        out.line(f"{report.lock_path}: fresh")
    else:
        out.line(f"{report.lock_path}: stale: {report.fresh.reason} (run `modelsync lock`)")
    if report.plan is not None:
        for line in plan_lines(report.plan):
            out.line(line)
        profile = report.profile.name if report.profile else None
        verdict = "clean" if report.clean else "drift"
        out.line(
            f"{verdict}: {report.files} files in {report.target_root} (profile {profile or '-'}): "
            f"{plan_summary(report.plan)}"
        )
    out.report(
        "status",
        exit_code=int(report.exit_code),
        lock=str(report.lock_path),
        fresh=bool(report.fresh),
        stale_reason=None if report.fresh else report.fresh.reason,
        clean=report.clean,
        profile=report.profile.name if report.profile else None,
        target=str(report.target_root) if report.target_root else None,
        files=report.files,
        plan=plan_json(report.plan) if report.plan is not None else None,
    )


COMMAND = Command("status", "show what sync would do; exit 0 clean, 3 drift", add_arguments, run)
