"""`modelsync push`: upload the blobs a lock needs to a blob remote that lacks them."""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.options import GlobalOptions, positive
from modelsync.cli.render import Output
from modelsync.errors import ExitCode
from modelsync.units import human_bytes

if TYPE_CHECKING:
    from modelsync.ops.push import NeededBlob, Pushed, PushReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", metavar="NAME", help="the [remotes.NAME] to push to")
    add_model_filter(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the upload plan only")
    parser.add_argument(
        "--check",
        action="store_true",
        help="read back every object the remote lists and replace those with other bytes",
    )
    parser.add_argument(
        "--jobs", type=positive, default=4, metavar="N", help="parts uploaded at once"
    )
    parser.add_argument(
        "--part-size",
        type=_mib,
        default=None,
        metavar="MIB",
        help="MiB per multipart part (default 64; S3 takes 5 to 5120)",
    )


def _mib(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of MiB, got {text!r}")
    return max(1, int(value * (1 << 20)))


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.push import PushRequest, push_project  # noqa: PLC0415 - see base.LAZY_OPS

    report = push_project(
        PushRequest(
            manifest=opts.manifest,
            store=opts.store,
            models=tuple(args.model),
            remote=args.remote,
            dry_run=args.dry_run,
            jobs=args.jobs,
            part_size=args.part_size,
            offline=opts.offline,
            check=args.check,
            environ=dict(os.environ),
        )
    )
    return render(report, out)


def render(report: PushReport, out: Output) -> int:
    """The plan's lines, one summary line, the JSON report; exit 3 while the remote still lacks
    a blob this store could not give it."""
    plan, where = report.plan, f"{report.remote.name} ({report.remote.describe()})"
    verb = "upload" if report.dry_run else "uploaded"
    done = {p.blob.sha256: p for p in report.pushed}
    for blob in plan.upload:
        reused = done[blob.sha256].parts_reused if blob.sha256 in done else 0
        more = f", {reused} parts from an earlier push" if reused else ""
        out.line(f"  {verb:9} {blob.label} ({human_bytes(blob.size)}{more})")
    for blob in plan.missing:
        out.line(f"  missing  {blob.label} ({human_bytes(blob.size)}): not in this store")
    lead = "would push" if report.dry_run else "pushed"
    out.line(
        f"{lead} to {where}: {len(plan.upload)} blobs ({human_bytes(plan.bytes_to_upload)}"
        f"{'' if report.dry_run else f' in {report.seconds:.1f} s'}), "
        f"{len(plan.present)} already there, {len(plan.missing)} missing here"
    )
    code = ExitCode.OK
    if plan.missing:
        code = ExitCode.STALE
        out.line(
            f"the remote still lacks {len(plan.missing)} blobs this store does not hold: run "
            "`modelsync sync` (with --profile for each profile the lock declares) and push again"
        )
    out.report(
        "push",
        exit_code=int(code),
        remote=report.remote.name,
        lock=str(report.lock_path),
        dry_run=report.dry_run,
        upload=[_blob(b, done.get(b.sha256)) for b in plan.upload],
        present=[b.label for b in plan.present],
        missing=[{"file": b.label, "sha256": b.sha256, "size": b.size} for b in plan.missing],
        bytes_to_upload=plan.bytes_to_upload,
        bytes_sent=report.bytes_sent,
        seconds=round(report.seconds, 3),
    )
    return int(code)


def _blob(blob: NeededBlob, pushed: Pushed | None) -> dict[str, object]:
    fields: dict[str, object] = {"file": blob.label, "sha256": blob.sha256, "size": blob.size}
    if pushed is not None:
        fields |= {"sent": pushed.sent, "parts_reused": pushed.parts_reused}
    return fields


COMMAND = Command(
    "push", "upload the blobs the lock needs to a blob remote that lacks them", add_arguments, run
)
