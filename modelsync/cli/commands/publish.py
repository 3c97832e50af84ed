"""`modelsync publish`: push files to a Hub repo with a generated model card."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.units import human_bytes

if TYPE_CHECKING:
    from modelsync.ops.publish import Published, PublishReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the upload plan only")
    parser.add_argument("--target", metavar="NAME", help="the [publish.NAME] entry to push")


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.publish import PublishRequest, publish_project  # noqa: PLC0415 - see base.LAZY_OPS

    report = publish_project(
        PublishRequest(
            manifest=opts.manifest,
            store=opts.store,
            target=args.target,
            dry_run=args.dry_run,
            offline=opts.offline,
            environ=dict(os.environ),
        )
    )
    render(report, out)
    return 0


def render(report: PublishReport, out: Output) -> None:
    """Per target: one line per file of the plan, then what was (or would be) committed."""
    for item in report.results:
        _render_one(item, report.dry_run, out)
    out.report(
        "publish",
        dry_run=report.dry_run,
        targets=[
            {
                "target": r.target,
                "repo": r.plan.repo,
                "endpoint": r.endpoint,
                "exists": r.plan.exists,
                "commit": r.commit,
                "up_to_date": not r.plan,
                "bytes": r.plan.upload_bytes,
                "add": [f.path for f in r.plan.add],
                "replace": [f.path for f in r.plan.replace],
                "delete": [f.path for f in r.plan.delete],
                "unchanged": [f.path for f in r.plan.unchanged],
                "extra": [f.path for f in r.plan.extra],
            }
            for r in report.results
        ],
    )


def _render_one(item: Published, dry_run: bool, out: Output) -> None:
    plan = item.plan
    where = f"{item.endpoint}/{plan.repo}"
    if not plan:
        out.line(f"{item.target}: {where} is up to date ({len(plan.unchanged)} files unchanged)")
        return
    for f in plan.add:
        out.line(f"  add        {f.path} ({human_bytes(f.size)}, sha256 {f.sha256})")
    for f in plan.replace:
        out.line(f"  replace    {f.path} ({human_bytes(f.size)}, sha256 {f.sha256})")
    for d in plan.delete:
        out.line(f"  delete     {d.path} ({human_bytes(d.size)})")
    for f in plan.unchanged:
        out.line(f"  unchanged  {f.path}")
    for d in plan.extra:
        out.line(f"  keep       {d.path} (not published here; delete-extra = true removes it)")
    counts = (
        f"{len(plan.add)} added, {len(plan.replace)} replaced, {len(plan.delete)} deleted, "
        f"{len(plan.unchanged)} unchanged; {human_bytes(plan.upload_bytes)} "
        f"({plan.upload_bytes} bytes)"
    )
    new = "" if plan.exists else " (a new repository)"
    if dry_run:
        out.line(f"{item.target}: would commit to {where}{new}: {counts} to upload")
    else:
        out.line(f"{item.target}: committed {item.commit} to {where}{new}: {counts} uploaded")


COMMAND = Command(
    "publish",
    "upload what changed to a Hub repo in one commit",
    add_arguments,
    run,
)
