"""`modelsync serve`: a Hub-compatible HTTP server (LAN mirror, air-gapped fleet, tests)."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelsync.cli.commands.base import Command
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        type=Path,
        required=True,
        metavar="DIR",
        help="serve the repositories under DIR/<namespace>/<name>/ (state kept in DIR/.hub/)",
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
        help="accepted tokens, one `USER ROLE TOKEN` per line (never on the command line)",
    )


def run(args: argparse.Namespace, _opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.serve import ServeRequest, serve_until_stopped  # noqa: PLC0415 - see base.LAZY_OPS

    request = ServeRequest(
        root=args.root,
        host=args.host,
        port=args.port,
        cdn_host=args.cdn_host,
        cdn_port=args.cdn_port,
        tokens_file=args.tokens_file,
        ollama_models=args.ollama_models,
    )

    def ready(endpoint: str) -> None:
        out.line(f"serving {request.root} at {endpoint} (HF_ENDPOINT={endpoint}); Ctrl-C stops")
        out.report("serve", endpoint=endpoint, root=str(request.root))

    serve_until_stopped(request, on_ready=ready)
    return 0


COMMAND = Command("serve", "serve repositories over the Hub's HTTP API", add_arguments, run)
