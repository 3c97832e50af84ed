"""`modelsync export`: hand locked models to other tools without copying bytes."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import add_model_filter, unbuilt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ollama", metavar="NAME", help="write an Ollama manifest and blob links as NAME"
    )
    add_model_filter(parser)


COMMAND = unbuilt("export", "hand locked models to other tools", add_arguments)
