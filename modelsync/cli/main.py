"""The entry point: parse flags, run one command, map errors to exit codes.

This is the only place that turns a ModelsyncError into an exit code (design.md section 2).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from modelsync import __version__, log
from modelsync.cli.commands import COMMANDS
from modelsync.cli.options import add_global_options, global_options
from modelsync.cli.render import Output, event_line
from modelsync.errors import ExitCode, ModelsyncError, UsageError

PROG = "modelsync"


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting on its own."""

    def error(self, message: str) -> NoReturn:
        where = "" if self.prog == PROG else f"{self.prog}: "
        raise UsageError(f"{where}{message}", hint=f"run `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; global options work before and after the command name."""
    parser = _Parser(
        prog=PROG,
        description="Keep LLM model files where they belong: models.toml → models.lock → disk.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        cmd_parser = sub.add_parser(command.name, help=command.help, description=command.help)
        command.add_arguments(cmd_parser)
        add_global_options(cmd_parser, suppress=True)
        cmd_parser.set_defaults(run=command.run)
    return parser


def _traceback(stream: TextIO) -> None:
    import traceback  # noqa: PLC0415 - only with -v, after an error

    traceback.print_exc(file=stream)


def _no_command(*_args: object) -> int:
    raise UsageError("no command given", hint=f"run `{PROG} --help` to list them")


def main(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the CLI; returns the exit code (the console script passes it to sys.exit)."""
    out = Output(json="--json" in (argv if argv is not None else sys.argv[1:]))
    out.stdout = stdout if stdout is not None else sys.stdout
    out.stderr = stderr if stderr is not None else sys.stderr
    verbose = False
    try:
        try:
            # argparse prints --help and --version to sys.stdout itself.
            with contextlib.redirect_stdout(out.stdout):
                args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version print and stop: that is success
            return int(exc.code or 0)
        if args.command is None:
            args.run = _no_command
        opts = global_options(args)
        out.json = opts.json
        out.quiet = opts.verbosity < 0
        verbose = opts.verbosity > 0
        log.configure(
            json=opts.json,
            verbosity=opts.verbosity,
            stream=out.stdout if opts.json else out.stderr,
            render=event_line,
        )
        return int(args.run(args, opts, out))
    except ModelsyncError as exc:
        if verbose:
            _traceback(out.stderr)
        out.error(exc.one_line(), exit_code=exc.exit_code)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        out.error("interrupted", exit_code=130)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort: one line, exit 1, traceback with -v
        if verbose:
            _traceback(out.stderr)
        hint = "" if verbose else " (run again with -v for the traceback)"
        out.error(f"internal error: {type(exc).__name__}: {exc}{hint}", exit_code=ExitCode.INTERNAL)
        return int(ExitCode.INTERNAL)
