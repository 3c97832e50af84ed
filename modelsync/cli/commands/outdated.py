"""`modelsync outdated`: ask the registries whether locked revisions moved."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import add_model_filter, unbuilt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)


COMMAND = unbuilt(
    "outdated", "show locked revisions that moved upstream; exit 3 if any", add_arguments
)
