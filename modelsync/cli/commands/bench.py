"""`modelsync bench`: run llama-cpp-python on the locked GGUF files."""

from __future__ import annotations

import argparse

from modelsync.cli.commands.base import Command, add_model_filter, not_built


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_filter(parser)
    parser.add_argument("--n-prompt", type=int, default=512, metavar="N", help="prompt tokens")
    parser.add_argument("--n-gen", type=int, default=128, metavar="N", help="generated tokens")
    parser.add_argument("--ctx", type=int, metavar="N", help="context size (default: the model's)")
    parser.add_argument(
        "--gpu-layers", type=int, default=-1, metavar="N", help="layers to offload (-1: all)"
    )
    parser.add_argument("--force", action="store_true", help="measure again even if results exist")


COMMAND = Command(
    "bench", "benchmark locked GGUF files with llama.cpp", add_arguments, not_built("bench")
)
