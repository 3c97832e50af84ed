"""`modelsync store`: the blob store at a glance (size, blobs, dedup, projects, partials)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.units import human_bytes

if TYPE_CHECKING:
    from modelsync.ops.store_info import StoreInfo


def add_arguments(_parser: argparse.ArgumentParser) -> None:
    """No flags of its own: `--store` (global) picks the store."""


def run(_args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.store_info import store_info  # noqa: PLC0415 - see base.LAZY_OPS

    render(store_info(opts.store), out)
    return 0


def render(info: StoreInfo, out: Output) -> None:
    """Totals, then one line per registered project."""
    out.line(f"store: {info.store} ({human_bytes(info.total_bytes)})")
    out.line(
        f"blobs: {info.blobs} ({human_bytes(info.blob_bytes)}); "
        f"shared by dedup: {human_bytes(info.shared_bytes)}"
    )
    out.line(f"partial downloads: {info.partials} ({human_bytes(info.partial_bytes)})")
    out.line(f"quarantined: {info.quarantined} ({human_bytes(info.quarantined_bytes)})")
    out.line(f"projects: {len(info.projects)}")
    for project in info.projects:
        blobs = "? blobs" if project.blobs is None else f"{project.blobs} blobs"
        gone = "" if project.exists else " (lock moved or deleted; see `modelsync gc`)"
        target = f" → {project.target}" if project.target else ""
        out.line(f"  {project.lock}{target}: {blobs}, {human_bytes(project.bytes)}{gone}")
    out.report(
        "store",
        store=str(info.store),
        bytes=info.total_bytes,
        blobs=info.blobs,
        blob_bytes=info.blob_bytes,
        shared_bytes=info.shared_bytes,
        partials=info.partials,
        partial_bytes=info.partial_bytes,
        quarantined=info.quarantined,
        quarantined_bytes=info.quarantined_bytes,
        projects=[
            {
                "lock": str(p.lock),
                "target": str(p.target) if p.target else None,
                "exists": p.exists,
                "blobs": p.blobs,
                "bytes": p.bytes,
            }
            for p in info.projects
        ],
    )


COMMAND = Command(
    "store", "the blob store: size, blobs, dedup, projects, partials", add_arguments, run
)
