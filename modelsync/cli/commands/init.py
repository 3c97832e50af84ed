"""`modelsync init`: write a commented models.toml to start from."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="replace an existing manifest")


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.init import init_manifest  # noqa: PLC0415 - see base.LAZY_OPS

    report = init_manifest(opts.new_manifest, force=args.force)
    verb = "replaced" if report.replaced else "wrote"
    out.line(f"{verb} {report.path}; edit it, then run `modelsync lock`")
    out.report("init", path=str(report.path), replaced=report.replaced)
    return 0


COMMAND = Command("init", "write a commented models.toml to start from", add_arguments, run)
