"""`modelsync hw`: show the detected hardware profile and what fits."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, add_model_filter, not_built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)


COMMAND = Command("hw", "show the hardware profile and what fits", add_arguments, not_built("hw"))
