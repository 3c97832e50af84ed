"""`modelsync serve`: a Hub-compatible HTTP server (LAN mirror, air-gapped fleet, tests)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from modelsync.cli.commands.base import Command
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        metavar="DIR",
        help="serve the repositories under DIR/<namespace>/<name>/ (state kept in DIR/.hub/)",
    )
    parser.add_argument(
        "--lock",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a read-only mirror of this lock's Hub models at their locked commits, answered "
        "from the store (repeatable)",
    )
    parser.add_argument(
        "--project",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="as --lock DIR/models.lock (repeatable)",
    )
    parser.add_argument(
        "--pull-through",
        metavar="REGISTRY",
        help="with --lock: fetch a locked file the store lacks from REGISTRY (`hf`, or the URL "
        "of a Hub-compatible registry), verify it against the lock, keep it, then serve it",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 = any)")
    parser.add_argument(
        "--cdn-host",
        metavar="HOST",
        help="also serve large files from a second origin on HOST via signed, expiring redirects",
    )
    parser.add_argument("--cdn-port", type=int, default=0, help="port of the second origin")
    parser.add_argument(
        "--ollama-models",
        type=Path,
        metavar="DIR",
        help="also serve an Ollama models folder (e.g. ~/.ollama/models) as an Ollama registry "
        "at /v2/",
    )
    parser.add_argument(
        "--tokens-file",
        type=Path,
        metavar="FILE",
        help="accepted tokens, one `USER ROLE TOKEN` per line (never on the command line); "
        "also $MODELSYNC_SERVE_TOKEN; with --lock every request then needs one",
    )


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.serve import ServeRequest, lock_of, serve_until_stopped  # noqa: PLC0415 - see base.LAZY_OPS

    locks = (*args.lock, *(lock_of(p) for p in args.project))
    if args.root is None and not locks:
        raise UsageError(
            "serve needs --root DIR, or --lock FILE / --project DIR",
            hint="e.g. `modelsync serve --project .` to mirror this project's locked models",
        )
    request = ServeRequest(
        root=args.root,
        host=args.host,
        port=args.port,
        cdn_host=args.cdn_host,
        cdn_port=args.cdn_port,
        tokens_file=args.tokens_file,
        ollama_models=args.ollama_models,
        locks=locks,
        store=opts.store,
        pull_through=args.pull_through,
        environ=dict(os.environ),
    )
    what = str(request.root) if request.root else ", ".join(str(p) for p in locks)

    def ready(endpoint: str) -> None:
        out.line(f"serving {what} at {endpoint} (HF_ENDPOINT={endpoint}); Ctrl-C stops")
        out.report("serve", endpoint=endpoint, root=str(request.root) if request.root else None)

    serve_until_stopped(request, on_ready=ready)
    return 0


COMMAND = Command("serve", "serve repositories over the Hub's HTTP API", add_arguments, run)
