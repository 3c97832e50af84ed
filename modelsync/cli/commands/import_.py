"""`modelsync import BUNDLE`: verify a bundle's blobs and adopt them into the store, offline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.errors import ManifestError
from modelsync.units import human_bytes

if TYPE_CHECKING:
    from modelsync.ops.bundle import ImportReport


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bundle",
        metavar="BUNDLE",
        type=Path,
        help="the folder or .tar file `modelsync export --bundle` wrote",
    )


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.bundle import ImportRequest, import_bundle  # noqa: PLC0415 - see base.LAZY_OPS

    try:
        project_lock: Path | None = opts.lock
    except ManifestError:  # not run in a project: nothing to compare the bundle's lock with
        project_lock = None
    report = import_bundle(
        ImportRequest(
            bundle=args.bundle,
            store=opts.store,
            project_lock=project_lock,
            wait=opts.wait,
            wait_timeout=opts.wait_timeout,
        )
    )
    render(report, out)
    error = report.error()
    if error is not None:
        raise error  # after the summary: the refusals are named there and in the events
    out.report(
        "import",
        bundle=str(report.bundle),
        lock_sha256=report.index.lock.sha256,
        blobs=len(report.index.blobs),
        admitted=[b.sha256 for b in report.admitted],
        bytes_admitted=report.bytes_admitted,
        present=[b.sha256 for b in report.present],
        ignored=[{"member": r.name, "reason": r.reason} for r in report.ignored],
        project_lock=str(report.project_lock) if report.project_lock else None,
        same_lock=report.same_lock,
        seconds=round(report.seconds, 3),
    )
    return 0


def render(report: ImportReport, out: Output) -> None:
    """The summary, each refusal, the project's lock against the bundle's, the next step."""
    total = len(report.index.blobs)
    out.line(
        f"imported {report.bundle}: {len(report.admitted)} blobs admitted "
        f"({human_bytes(report.bytes_admitted)} verified by SHA-256), {len(report.present)} "
        f"already in the store, {len(report.refused)} refused, of {total} "
        f"({report.seconds:.1f} s)"
    )
    for item in report.refused:
        out.line(f"  refused {report.label(item.name)}: {item.reason}")
    for item in report.ignored:
        out.line(f"  ignored {item.name!r}: {item.reason}; not read")
    if report.refused:
        return  # the error line says what to do first
    if report.same_lock:
        out.line(f"  {report.project_lock} is the bundle's lock; next: modelsync sync --offline")
    elif report.project_lock is not None:
        out.line(
            f"  {report.project_lock} differs from the bundle's models.lock: put the bundle's "
            "lock there (and the models.toml it was made from), then: modelsync sync --offline"
        )
    else:
        out.line(
            "  next: in the project, beside models.toml, put the bundle's models.lock, then: "
            "modelsync sync --offline"
        )


COMMAND = Command(
    "import",
    "verify a bundle's blobs and adopt them into the store, without network (then sync --offline)",
    add_arguments,
    run,
)
