"""`modelsync export`: hand locked models to other tools without copying bytes."""

from __future__ import annotations

import argparse
import os

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.errors import NotImplementedYetError, UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ollama",
        metavar="NAME",
        help="write an Ollama manifest and blob links as NAME ([namespace/]model[:tag]) "
        "into OLLAMA_MODELS (default ~/.ollama/models)",
    )
    parser.add_argument(
        "--bundle", metavar="PATH", help="not built yet: the lock's blobs for an air gap"
    )
    add_model_filter(parser)
    parser.add_argument("--profile", metavar="NAME", help="which of the lock's profiles to use")


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    if args.bundle is not None:
        raise NotImplementedYetError(
            "`modelsync export --bundle` is not implemented yet; nothing was read or changed",
            hint="see the project's open issues for its status",
        )
    if args.ollama is None:
        raise UsageError("export: say where to: --ollama NAME", hint="modelsync export --help")
    from modelsync.ops.export import ExportRequest, export_ollama  # noqa: PLC0415 - see base.LAZY_OPS

    report = export_ollama(
        ExportRequest(
            manifest=opts.manifest,
            store=opts.store,
            models=tuple(args.model),
            profile=args.profile,
            environ=dict(os.environ),
            ollama=args.ollama,
        )
    )
    plan = report.plan
    how = "hardlinked" if not report.copied else "copied (another filesystem than the store)"
    out.line(
        f"exported {plan.model} to Ollama as {plan.name}: wrote {plan.manifest_path}; "
        f"{report.linked + report.copied} blobs {how}, {report.present} already there, "
        f"{report.written} written (config); run `ollama list` to see it"
    )
    out.report(
        "export",
        model=plan.model,
        name=plan.name,
        manifest=str(plan.manifest_path),
        linked=report.linked,
        copied=report.copied,
        present=report.present,
        written=report.written,
    )
    return 0


COMMAND = Command(
    "export", "hand a locked GGUF model to a local Ollama (--ollama NAME)", add_arguments, run
)
