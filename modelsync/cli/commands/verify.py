"""`modelsync verify`: check store blobs and placed files against the lock."""

from __future__ import annotations

import argparse
import os

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full", action="store_true", help="re-hash every byte (default: size + stat cache)"
    )
    add_model_filter(parser)
    parser.add_argument("--profile", metavar="NAME", help="which of the lock's profiles to check")


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.verify import VerifyRequest, verify_project  # noqa: PLC0415 - see base.LAZY_OPS

    outcome = verify_project(
        VerifyRequest(
            manifest=opts.manifest,
            store=opts.store,
            full=args.full,
            models=tuple(args.model),
            profile=args.profile,
            environ=dict(os.environ),
        )
    )
    report = outcome.report
    how = "every byte hashed" if report.full else "size + stat cache"
    out.line(
        f"verified {report.files} files and {report.blobs} blobs in {outcome.target_root} "
        f"(profile {outcome.profile.name or '-'}; {how}): all match models.lock"
    )
    out.report(
        "verify",
        ok=True,
        files=report.files,
        blobs=report.blobs,
        full=report.full,
        profile=outcome.profile.name,
        target=str(outcome.target_root),
    )
    return 0


COMMAND = Command(
    "verify",
    "check blobs and placed files against the lock; exit 4 on a mismatch",
    add_arguments,
    run,
)
