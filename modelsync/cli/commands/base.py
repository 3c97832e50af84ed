"""What a command is: its flags and the function that runs it."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.errors import NotImplementedYetError

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


def not_built(name: str) -> Runner:
    """Runner for a command whose flags are defined but whose work is not built yet."""

    def run(_args: argparse.Namespace, _opts: GlobalOptions, _out: Output) -> int:
        raise NotImplementedYetError(
            f"`modelsync {name}` is not implemented yet; nothing was read or changed",
            hint="see the project's open issues for its status",
        )

    return run


def unbuilt(
    name: str, text: str, add_arguments: Callable[[argparse.ArgumentParser], None]
) -> Command:
    """A command whose flags are defined but whose work is not: its help says so first."""
    return Command(name, f"not built yet: {text}", add_arguments, not_built(name))


def add_model_filter(parser: argparse.ArgumentParser) -> None:
    """`--model NAME`, repeatable: limit the command to these models."""
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="only this model (repeatable)",
    )
