"""`modelsync lock`: resolve models.toml against the registries into models.lock."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, not_built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 3 if the lock is missing or stale versus the manifest; no network",
    )
    parser.add_argument(
        "--upgrade", action="store_true", help="re-resolve everything to the newest commits"
    )
    parser.add_argument(
        "--upgrade-model",
        action="append",
        default=[],
        metavar="NAME",
        help="re-resolve only this model (repeatable); the others keep their commits",
    )
    parser.add_argument("--profile", metavar="NAME", help="resolve for this declared profile only")
    parser.add_argument("--explain", action="store_true", help="print the choice table")


COMMAND = Command("lock", "resolve models.toml into models.lock", add_arguments, not_built("lock"))
