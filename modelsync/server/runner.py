"""Starting and stopping the server: `serve()` for the CLI, `start_in_thread()` for tests."""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from aiohttp import web

from modelsync.errors import UsageError
from modelsync.log import get_logger
from modelsync.server.app import build_cdn_app, build_hub_app
from modelsync.server.config import ServerConfig
from modelsync.server.context import HubContext, Watch
from modelsync.server.repometa import RepoMeta, load_summarizer
from modelsync.server.repos import RepoStore
from modelsync.server.source import Repos

__all__ = ["ServerConfig", "ServerHandle", "serve", "start_in_thread"]

log = get_logger(__name__)

SHUTDOWN_TIMEOUT_S = 2.0
START_TIMEOUT_S = 60.0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {host}:{port}: {exc.strerror}",
            hint="pick another --port or --host (port 0 picks a free one)",
        ) from exc


def _base_url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class _Running:
    ctx: HubContext
    runners: list[web.AppRunner]

    async def stop(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        log.info("server.stopped", endpoint=self.ctx.endpoint)


async def _repos(config: ServerConfig) -> Repos:
    if config.source is not None:
        return config.source
    root = config.root
    if root is None:
        raise UsageError("the server needs repositories: a root folder or a source")
    root.mkdir(parents=True, exist_ok=True)
    store = await asyncio.to_thread(lambda: RepoStore(root, clock=config.clock))
    if config.rescan_on_start:
        await asyncio.to_thread(store.rescan)
    return store


async def _start(config: ServerConfig) -> _Running:
    store = await _repos(config)
    hub_sock = _bind(config.host, config.port)
    cdn_sock = _bind(config.cdn_host, config.cdn_port) if config.cdn_host else None
    cdn_endpoint = None
    if config.cdn_host and cdn_sock is not None:
        cdn_endpoint = (config.cdn_public_url or _base_url(config.cdn_host, cdn_sock)).rstrip("/")
    ctx = HubContext(
        config=config,
        store=store,
        meta=RepoMeta(store, load_summarizer()),
        endpoint=(config.public_url or _base_url(config.host, hub_sock)).rstrip("/"),
        cdn_endpoint=cdn_endpoint,
        signing_key=secrets.token_bytes(32),
        watch=Watch(store, config.rescan_ttl_s) if config.rescan_ttl_s is not None else None,
    )
    running = _Running(ctx, [])
    sites = [(build_hub_app(ctx), hub_sock)]
    if cdn_sock is not None:
        sites.append((build_cdn_app(ctx), cdn_sock))
    try:
        for app, sock in sites:
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
            await runner.setup()
            running.runners.append(runner)
            await web.SockSite(runner, sock).start()
    except BaseException:
        await running.stop()
        raise
    log.info(
        "server.started", endpoint=ctx.endpoint, cdn=ctx.cdn_endpoint, repos=len(store.repo_ids())
    )
    return running


async def serve(config: ServerConfig, *, on_ready: Callable[[str], None] | None = None) -> None:
    """Run the server until cancelled; `on_ready` gets the endpoint once it accepts requests."""
    running = await _start(config)
    try:
        if on_ready is not None:
            on_ready(running.ctx.endpoint)
        await asyncio.Event().wait()
    finally:
        await running.stop()


class ServerHandle:
    """A server running on its own event loop in a daemon thread; close it (or use `with`)."""

    def __init__(
        self, running: _Running, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ):
        self._running = running
        self._loop = loop
        self._thread = thread
        self.config = running.ctx.config
        self.endpoint = running.ctx.endpoint
        """Base URL of the Hub API, e.g. `http://127.0.0.1:41234`."""
        self.cdn_endpoint = running.ctx.cdn_endpoint
        """Base URL of the CDN origin, `None` without `cdn_host`."""
        self.counters = running.ctx.store.counters
        """Requests, bytes and events of this server."""

    @property
    def repos(self) -> RepoStore:
        """The `RepoStore` of a `root` server: repositories, commits, counters and events."""
        return self._running.ctx.writable

    def close(self) -> None:
        """Stop serving and wait for the thread to end (idempotent)."""
        if self._loop.is_closed() or not self._thread.is_alive():
            return
        stop = asyncio.run_coroutine_threadsafe(self._running.stop(), self._loop)
        stop.result(timeout=SHUTDOWN_TIMEOUT_S * 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=SHUTDOWN_TIMEOUT_S * 5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def start_in_thread(config: ServerConfig) -> ServerHandle:
    """Start the server on a new event loop in a daemon thread; returns once it accepts requests."""
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    thread = threading.Thread(target=run, name="modelsync-hub", daemon=True)
    thread.start()
    starting = asyncio.run_coroutine_threadsafe(_start(config), loop)
    try:
        running = starting.result(timeout=START_TIMEOUT_S)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=SHUTDOWN_TIMEOUT_S * 5)
        raise
    return ServerHandle(running, loop, thread)
