"""`modelsync verify`: check store blobs and placed files against the lock."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, add_model_filter, not_built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full", action="store_true", help="re-hash every byte (default: size + stat cache)"
    )
    add_model_filter(parser)


COMMAND = Command(
    "verify",
    "check blobs and placed files against the lock; exit 4 on a mismatch",
    add_arguments,
    not_built("verify"),
)
