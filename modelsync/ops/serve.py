"""`modelsync serve`: run the Hub-compatible server until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelsync.errors import UsageError
from modelsync.server.auth import load_tokens_file
from modelsync.server.runner import ServerConfig, serve


@dataclass(frozen=True, slots=True)
class ServeRequest:
    """What the user asked `serve` for."""

    root: Path
    host: str
    port: int
    cdn_host: str | None
    cdn_port: int
    tokens_file: Path | None
    ollama_models: Path | None = None


def _config(request: ServeRequest) -> ServerConfig:
    if not request.root.is_dir():
        raise UsageError(
            f"--root {request.root}: not a directory",
            hint="create it and put repositories in <root>/<namespace>/<name>/",
        )
    ollama = request.ollama_models
    if ollama is not None and not (ollama / "manifests").is_dir():
        raise UsageError(
            f"--ollama-models {ollama}: no manifests/ folder: not an Ollama models folder",
            hint="point it at Ollama's models folder (OLLAMA_MODELS, default ~/.ollama/models)",
        )
    tokens = load_tokens_file(request.tokens_file) if request.tokens_file else {}
    return ServerConfig(
        root=request.root.resolve(),
        host=request.host,
        port=request.port,
        cdn_host=request.cdn_host,
        cdn_port=request.cdn_port,
        tokens=tokens,
        ollama_root=ollama.resolve() if ollama is not None else None,
    )


async def _serve_until_signal(config: ServerConfig, on_ready: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = asyncio.create_task(serve(config, on_ready=on_ready))
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({server, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for task in (server, stopper):
        task.cancel()
    # A server that died on its own re-raises its error here; a cancelled one is a clean stop.
    with contextlib.suppress(asyncio.CancelledError):
        await server


def serve_until_stopped(request: ServeRequest, *, on_ready: Callable[[str], None]) -> None:
    """Serve until interrupted; a clean stop (Ctrl-C, SIGTERM) returns normally."""
    asyncio.run(_serve_until_signal(_config(request), on_ready))
