"""What a command is: its flags and the function that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output

Runner = Callable[[argparse.Namespace, GlobalOptions, Output], int]

LAZY_OPS = """Every command imports its ops module inside `run`: building the parser imports all
command modules, and a no-change `sync` must not pay for aiohttp, the resolver or another
command's pydantic models at start-up (the whole CLI import was 0.63 s, mostly those)."""


@dataclass(frozen=True, slots=True)
class Command:
    """A subcommand: name, one-line help, flag definitions and its runner."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Runner


def add_model_filter(parser: argparse.ArgumentParser) -> None:
    """`--model NAME`, repeatable: limit the command to these models."""
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="only this model (repeatable)",
    )
