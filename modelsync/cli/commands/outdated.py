"""`modelsync outdated`: ask the registries whether locked revisions moved."""

from __future__ import annotations

import argparse
import os
from datetime import UTC
from typing import TYPE_CHECKING, Any

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.units import human_bytes

if TYPE_CHECKING:
    from modelsync.ops.outdated import ModelChange, ModelStatus, OutdatedReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.outdated import OutdatedRequest, check_outdated  # noqa: PLC0415 - see base.LAZY_OPS

    request = OutdatedRequest(
        manifest=opts.manifest,
        models=tuple(args.model),
        offline=opts.offline,
        environ=dict(os.environ),
    )
    import asyncio  # noqa: PLC0415 - see base.LAZY_OPS

    report = asyncio.run(check_outdated(request))
    render(report, out)
    if report.failures:
        error = report.failures[0].error
        assert error is not None
        raise error  # main prints its line and exits with its code (5: a registry is down)
    return int(report.exit_code)


def change_text(change: ModelChange) -> str:
    """`1 added, 1 removed, 0 changed, +1.2 GiB; gpu24: Q4_K_M → Q6_K` (also `lock --upgrade`)."""
    sign = "+" if change.size_delta >= 0 else "-"
    text = (
        f"{len(change.added)} added, {len(change.removed)} removed, {len(change.changed)} "
        f"changed, {sign}{human_bytes(abs(change.size_delta))}"
    )
    moves = [f"{c.profile or '-'}: {c.old} → {c.new}" for c in change.choices if c.changed]
    return f"{text}; {', '.join(moves)}" if moves else f"{text}; choice unchanged"


def change_json(change: ModelChange) -> dict[str, Any]:
    """The JSON of a change (the `outdated` and `lock` reports)."""
    return {
        "name": change.name,
        "old_commit": change.old_commit,
        "new_commit": change.new_commit,
        "added": list(change.added),
        "removed": list(change.removed),
        "changed": list(change.changed),
        "size_delta": change.size_delta,
        "choices": [
            {"profile": c.profile, "old": c.old, "new": c.new, "changed": c.changed}
            for c in change.choices
        ],
    }


def _line(model: ModelStatus) -> str:
    old = (model.commit or "")[:7]
    if model.skipped is not None:
        return f"{model.name}: not checked: {model.skipped}"
    if model.error is not None:
        return f"{model.name}: could not check @ {old}: {model.error.one_line()}"
    if model.change is None:
        return f"{model.name}: up to date @ {old}"
    date = f" ({model.date.astimezone(UTC):%Y-%m-%d %H:%M} UTC)" if model.date else ""
    new = (model.upstream or "")[:7]
    return f"{model.name}: {old} → {new}{date}: {change_text(model.change)}"


def render(report: OutdatedReport, out: Output) -> None:
    """One line per model and a summary, or one JSON report."""
    for model in report.models:
        out.line(_line(model))
    moved = sum(m.moved for m in report.models)
    failed = len(report.failures)
    out.line(
        f"{len(report.models)} models: {moved} moved, {failed} could not be checked "
        f"({report.requests} requests, {report.seconds:.2f} s)"
    )
    out.report(
        "outdated",
        exit_code=int(report.exit_code),
        lock=str(report.lock_path),
        requests=report.requests,
        seconds=round(report.seconds, 3),
        models=[
            {
                "name": m.name,
                "commit": m.commit,
                "upstream": m.upstream,
                "date": m.date.isoformat() if m.date else None,
                "moved": m.moved,
                "skipped": m.skipped,
                "error": m.error.one_line() if m.error else None,
                "change": change_json(m.change) if m.change else None,
            }
            for m in report.models
        ],
    )


COMMAND = Command(
    "outdated", "show locked revisions that moved upstream; exit 3 if any", add_arguments, run
)
