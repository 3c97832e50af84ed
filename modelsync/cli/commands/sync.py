"""`modelsync sync`: make the targets match the lock through the blob store."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, add_model_filter, not_built

LINK_MODES = ("auto", "hardlink", "symlink", "copy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frozen", action="store_true", help="use the lock as is, never re-resolve"
    )
    parser.add_argument(
        "--locked", action="store_true", help="exit 3 if the lock is stale versus the manifest"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan (files, bytes to fetch) only"
    )
    add_model_filter(parser)
    parser.add_argument("--profile", metavar="NAME", help="which of the lock's profiles to sync")
    parser.add_argument("--jobs", type=int, default=4, metavar="N", help="parallel downloads")
    parser.add_argument("--link", choices=LINK_MODES, help="force a link mode (default: auto)")
    parser.add_argument(
        "--repair", action="store_true", help="re-fetch or re-link what verify finds wrong"
    )


COMMAND = Command("sync", "make this machine match models.lock", add_arguments, not_built("sync"))
