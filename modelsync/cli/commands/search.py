"""`modelsync search`: find GGUF repositories on a registry."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import unbuilt

SORT_KEYS = ("downloads", "likes", "updated", "created")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("text", nargs="?", help="words to look for in repository names")
    parser.add_argument("--registry", default="hf", metavar="NAME", help="registry to search")
    parser.add_argument("--author", metavar="NAME", help="only this user or organisation")
    parser.add_argument("--quant", metavar="QUANT", help="only repos offering this quantization")
    parser.add_argument("--params", metavar="RANGE", help="parameter count, e.g. 1B-8B")
    parser.add_argument("--sort", choices=SORT_KEYS, default="downloads", help="ranking order")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="results to show")
    parser.add_argument(
        "--gated",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="only gated (or, with --no-gated, only open) repos",
    )


COMMAND = unbuilt("search", "find GGUF repos on a registry", add_arguments)
