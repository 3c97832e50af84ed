"""`modelsync status`: what sync would do, and whether the lock is fresh."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, add_model_filter, not_built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)


COMMAND = Command(
    "status",
    "show what sync would do; exit 0 clean, 3 drift",
    add_arguments,
    not_built("status"),
)
