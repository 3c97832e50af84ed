"""`modelsync export`: hand locked models to other tools without copying bytes."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.errors import UsageError
from modelsync.units import human_bytes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ollama",
        metavar="NAME",
        help="write an Ollama manifest and blob links as NAME ([namespace/]model[:tag]) "
        "into OLLAMA_MODELS (default ~/.ollama/models)",
    )
    parser.add_argument(
        "--bundle",
        metavar="PATH",
        type=Path,
        help="write the lock's blobs, the lock and an index of digests for an air gap: a "
        "folder (resumable), or one tar file when PATH ends in .tar; `modelsync import` "
        "reads it",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="--bundle: print the files and bytes, write nothing"
    )
    add_model_filter(parser)
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="which of the lock's profiles to use (--bundle default: every profile)",
    )


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    if args.bundle is not None and args.ollama is not None:
        raise UsageError(
            "export: --ollama and --bundle go to different places; give one",
            hint="run `modelsync export` once for each",
        )
    if args.bundle is not None:
        return _bundle(args, opts, out)
    if args.ollama is None:
        raise UsageError(
            "export: say where to: --ollama NAME or --bundle PATH", hint="modelsync export --help"
        )
    if args.dry_run:
        raise UsageError("export --dry-run: only with --bundle", hint="modelsync export --help")
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


def _bundle(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.bundle import BundleRequest, export_bundle  # noqa: PLC0415 - see base.LAZY_OPS

    report = export_bundle(
        BundleRequest(
            manifest=opts.manifest,
            store=opts.store,
            models=tuple(args.model),
            profile=args.profile,
            environ=dict(os.environ),
            bundle=args.bundle,
            dry_run=args.dry_run,
        )
    )
    plan, written = report.plan, report.written
    index = plan.index
    form = "tar file" if plan.tar else "folder"
    what = (
        f"{len(plan.files)} files in {len(index.blobs)} blobs ({human_bytes(index.size)}) "
        "and models.lock"
    )
    if written is None:
        for name, size in plan.files:
            out.line(f"  {name} ({human_bytes(size)})")
        out.line(f"would write a bundle {form} {plan.path}: {what}")
    elif plan.tar:
        out.line(f"wrote bundle {plan.path}: {what} ({report.seconds:.1f} s)")
    else:
        out.line(
            f"wrote bundle folder {plan.path}: {what}; {written.linked} blobs hardlinked, "
            f"{written.copied} copied, {written.present} already there, {written.removed} "
            f"removed ({report.seconds:.1f} s)"
        )
    if written is not None:
        out.line(f"  next, on the other machine: modelsync import {plan.path}")
    out.report(
        "export",
        bundle=str(plan.path),
        form="tar" if plan.tar else "folder",
        dry_run=written is None,
        lock_sha256=index.lock.sha256,
        files=len(plan.files),
        blobs=len(index.blobs),
        bytes=index.size,
        linked=written.linked if written else 0,
        copied=written.copied if written else 0,
        present=written.present if written else 0,
        removed=written.removed if written else 0,
        seconds=round(report.seconds, 3),
    )
    return 0


COMMAND = Command(
    "export",
    "hand locked models to Ollama (--ollama NAME) or carry them across an air gap (--bundle PATH)",
    add_arguments,
    run,
)
