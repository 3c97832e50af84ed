"""`modelsync lock`: resolve models.toml against the registries into models.lock."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command
from modelsync.cli.commands.outdated import change_json, change_text
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output

if TYPE_CHECKING:
    from modelsync.ops.lock import LockReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 3 if the lock is missing or stale versus the manifest; no network",
    )
    parser.add_argument(
        "--upgrade", action="store_true", help="re-resolve everything to the newest commits"
    )
    parser.add_argument(
        "--upgrade-model",
        action="append",
        default=[],
        metavar="NAME",
        help="re-resolve only this model (repeatable); the others keep their commits",
    )
    parser.add_argument("--profile", metavar="NAME", help="resolve for this declared profile only")
    parser.add_argument("--explain", action="store_true", help="print the choice table")


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    import asyncio  # noqa: PLC0415 - see base.LAZY_OPS

    from modelsync.ops.lock import LockRequest, lock_project  # noqa: PLC0415

    request = LockRequest(
        manifest=opts.manifest,
        check=args.check,
        upgrade=args.upgrade,
        upgrade_models=tuple(args.upgrade_model),
        profile=args.profile,
        explain=args.explain,
        offline=opts.offline,
        environ=dict(os.environ),
        store=opts.store,
        wait=opts.wait,
        wait_timeout=opts.wait_timeout,
    )
    report = asyncio.run(lock_project(request))
    render(report, out, explain=args.explain)
    return 0


def render(report: LockReport, out: Output, *, explain: bool) -> None:
    """Human lines (and the --explain tables), or one JSON report."""
    from modelsync.resolve.explain import explain_lines  # noqa: PLC0415 - see base.LAZY_OPS

    if report.checked:
        out.line(f"{report.lock_path} is fresh")
        out.report("lock", path=str(report.lock_path), fresh=True)
        return
    for outcome in report.models:
        if explain:
            for item in outcome.explained:
                for line in explain_lines(outcome.name, outcome.source, item.machine, item.choice):
                    out.line(line)
                out.line("")
        for entry in outcome.entries:
            where = f" [{entry.profile}]" if entry.profile else ""
            pin = f" @ {entry.commit.removeprefix('sha256:')[:7]}" if entry.commit else ""
            what = entry.quant or f"{len(entry.files)} files"
            kept = " (kept)" if outcome.reused else ""
            out.line(f"{entry.name}{where}: {what}{pin}{kept}: {entry.reason}")
    for change in report.changes:
        old, new = (change.old_commit or "")[:7], (change.new_commit or "")[:7]
        out.line(f"  changed {change.name}: {old} → {new}: {change_text(change)}")
    verb = "wrote" if report.written else "unchanged:"
    resolved = sum(not o.reused for o in report.models)
    out.line(
        f"{verb} {report.lock_path} ({len(report.models)} models, {resolved} resolved, "
        f"{report.requests} requests, {report.seconds:.2f} s)"
    )
    out.report(
        "lock",
        path=str(report.lock_path),
        written=report.written,
        requests=report.requests,
        seconds=round(report.seconds, 3),
        models=[
            {
                "name": e.name,
                "profile": e.profile,
                "quant": e.quant,
                "commit": e.commit,
                "reason": e.reason,
                "files": [f.path for f in e.files],
                "kept": o.reused,
            }
            for o in report.models
            for e in o.entries
        ],
        changes=[change_json(c) for c in report.changes],
    )


COMMAND = Command("lock", "resolve models.toml into models.lock", add_arguments, run)
