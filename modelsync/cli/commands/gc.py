"""`modelsync gc`: remove blobs no registered lock or placed file references."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.units import human_bytes

if TYPE_CHECKING:
    from modelsync.ops.gc import GcReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would be removed and the bytes freed"
    )
    parser.add_argument(
        "--forget-missing",
        action="store_true",
        help="stop keeping the blobs of projects whose models.lock is gone (moved or deleted)",
    )


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.gc import GcRequest, gc_store  # noqa: PLC0415 - see base.LAZY_OPS

    request = GcRequest(
        store=opts.store,
        dry_run=args.dry_run,
        forget_missing=args.forget_missing,
        wait=opts.wait,
        wait_timeout=opts.wait_timeout,
    )
    report = gc_store(request)
    render(report, out)
    return 0


def render(report: GcReport, out: Output) -> None:
    """One line per removal, then the totals."""
    plan = report.plan
    for item in (*plan.blobs, *plan.temps):
        shared = "" if item.frees or not item.size else ", still linked elsewhere"
        names = f": {', '.join(item.names)}" if item.names else ""
        out.line(f"  {item.why:<26} {item.path} ({human_bytes(item.size)}{shared}){names}")
    for root in plan.dead_roots:
        why = "imported bundle lock, no sync registered it" if root.imported else None
        out.line(f"  forget lock               {root.lock} ({why or 'no longer exists'})")
    for root in plan.missing_roots:
        kept = "its blobs are kept" if root.blobs is not None else "every blob is kept"
        out.line(
            f"  missing lock              {root.lock} (moved or deleted? {kept}; sync it where "
            "it is now, then `modelsync gc --forget-missing` frees what nothing else uses)"
        )
    counts = (
        f"{len(plan.blobs)} blobs, {len(plan.temps)} temp files; "
        f"{plan.kept_blobs} blobs kept for {plan.locks} registered locks"
    )
    if plan.missing_roots:
        counts += f" and {len(plan.missing_roots)} missing ones"
    if plan.held_blobs:
        counts += f"; {plan.held_blobs} unreferenced blobs held for the missing ones"
    if plan.in_use:
        counts += f"; {plan.in_use} downloads in progress left alone"
    if report.dry_run:
        out.line(f"would free {human_bytes(plan.bytes_to_free)} in {report.store}: {counts}")
    else:
        out.line(f"freed {human_bytes(report.freed)} in {report.store}: {counts}")
    out.report(
        "gc",
        store=str(report.store),
        dry_run=report.dry_run,
        bytes_to_free=plan.bytes_to_free,
        freed=report.freed,
        blobs=[str(i.path) for i in plan.blobs],
        blob_names={str(i.path): list(i.names) for i in plan.blobs},
        temps=[str(i.path) for i in plan.temps],
        dropped_locks=[str(r.lock) for r in plan.dead_roots],
        missing_locks=[str(r.lock) for r in plan.missing_roots],
        kept_blobs=plan.kept_blobs,
        in_use=plan.in_use,
    )


COMMAND = Command("gc", "remove unreferenced blobs and stale temp files", add_arguments, run)
