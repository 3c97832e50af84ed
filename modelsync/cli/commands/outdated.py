"""`modelsync outdated`: ask the registries whether locked revisions moved."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, add_model_filter, not_built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)


COMMAND = Command(
    "outdated",
    "show locked revisions that moved upstream; exit 3 if any",
    add_arguments,
    not_built("outdated"),
)
