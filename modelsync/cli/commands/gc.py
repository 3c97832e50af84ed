"""`modelsync gc`: remove blobs no registered lock references."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, not_built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print the bytes that would be freed"
    )


COMMAND = Command(
    "gc", "remove unreferenced blobs and stale temp files", add_arguments, not_built("gc")
)
