"""`modelsync publish`: push files to a Hub repo with a generated model card."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, not_built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the upload plan only")
    parser.add_argument("--target", metavar="NAME", help="the [publish.NAME] entry to push")


COMMAND = Command(
    "publish",
    "upload what changed to a Hub repo in one commit",
    add_arguments,
    not_built("publish"),
)
