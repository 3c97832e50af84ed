"""`modelsync serve`: run the Hub-compatible server until SIGINT or SIGTERM.

Two modes. `--root DIR`: the repositories under DIR (uploads accepted). `--lock FILE` /
`--project DIR`: a read-only LAN mirror answering exactly the locked Hub repositories at their
locked commits from this machine's blob store (`server.mirror`); with `--pull-through
REGISTRY` a locked file the store lacks is fetched from upstream through the transfer engine,
verified against the lock's SHA-256 and admitted to the store, so the first client warms the
mirror for the rest. Concurrent requests for one missing blob share one download, and get its
bytes as they arrive (`_Pull`: the engine's gap-free prefix, through `Fetcher.watch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from modelsync.digest import is_commit_id
from modelsync.errors import IntegrityError, ModelsyncError, UsageError
from modelsync.lockfile.io import read_lock
from modelsync.lockfile.model import Lockfile
from modelsync.log import get_logger, redact_url
from modelsync.rules import hub_file_url
from modelsync.server.auth import TokenInfo, load_tokens_file
from modelsync.server.hub_errors import EntryNotFoundError, HubError
from modelsync.server.mirror import (
    BlobSource,
    LockedRepos,
    MirrorRepo,
    Pin,
    PinnedFile,
    plan_mirror,
)
from modelsync.server.runner import ServerConfig, serve
from modelsync.server.source import DEFAULT_BRANCH
from modelsync.store import roots
from modelsync.store.layout import StoreLayout
from modelsync.store.locking import exclusive

if TYPE_CHECKING:  # aiohttp and the transfer engine load only when pulling (cli/commands/base)
    from modelsync.fetch.download import Fetcher, FetchItem
    from modelsync.store.partial import Partial

log = get_logger(__name__)

SERVE_TOKEN_ENV = "MODELSYNC_SERVE_TOKEN"  # noqa: S105  the name of a variable, not a token
"""A token the server accepts (read role), besides `--tokens-file`; never on the command line."""
MIRROR_USER = "mirror"
LOCK_NAME = "models.lock"


@dataclass(frozen=True, slots=True)
class ServeRequest:
    """What the user asked `serve` for."""

    root: Path | None
    host: str
    port: int
    cdn_host: str | None
    cdn_port: int
    tokens_file: Path | None
    ollama_models: Path | None = None
    locks: tuple[Path, ...] = ()
    """`--lock FILE` and `--project DIR` (its models.lock): serve these, read-only."""
    store: Path | None = None
    """The blob store a lock-mode server answers from."""
    pull_through: str | None = None
    """`--pull-through`: `hf` or a Hub-compatible URL to fetch missing locked files from."""
    environ: Mapping[str, str] = field(default_factory=dict)


def _tokens(request: ServeRequest) -> dict[str, TokenInfo]:
    tokens = load_tokens_file(request.tokens_file) if request.tokens_file else {}
    env_token = (request.environ.get(SERVE_TOKEN_ENV) or "").strip()
    if env_token:
        tokens.setdefault(env_token, TokenInfo(MIRROR_USER, "read"))
    return tokens


def _config(request: ServeRequest, source: LockedRepos | None) -> ServerConfig:
    root = request.root
    if source is None and (root is None or not root.is_dir()):
        raise UsageError(
            f"--root {root}: not a directory",
            hint="create it and put repositories in <root>/<namespace>/<name>/",
        )
    ollama = request.ollama_models
    if ollama is not None and not (ollama / "manifests").is_dir():
        raise UsageError(
            f"--ollama-models {ollama}: no manifests/ folder: not an Ollama models folder",
            hint="point it at Ollama's models folder (OLLAMA_MODELS, default ~/.ollama/models)",
        )
    tokens = _tokens(request)
    return ServerConfig(
        root=root.resolve() if source is None and root is not None else None,
        source=source,
        require_token=source is not None and bool(tokens),
        host=request.host,
        port=request.port,
        cdn_host=request.cdn_host,
        cdn_port=request.cdn_port,
        tokens=tokens,
        ollama_root=ollama.resolve() if ollama is not None else None,
    )


def lock_of(project: Path) -> Path:
    """`--project DIR`: the models.lock in DIR."""
    return project / LOCK_NAME


def read_locks(paths: tuple[Path, ...]) -> list[tuple[Path, Lockfile]]:
    """Each lock to serve; a missing one is a usage error naming it."""
    locks = []
    for path in paths:
        lock = read_lock(path)
        if lock is None:
            raise UsageError(
                f"--lock {path}: no such file",
                hint="run `modelsync lock` in that project first, or fix the path",
            )
        locks.append((path, lock))
    return locks


def pins_of(path: Path, lock: Lockfile) -> list[Pin]:
    """The Hub models of a lock at their locked commits; url and Ollama models are skipped
    (with a log line): a Hub-compatible mirror cannot serve them."""
    pins = []
    for model in lock.models:
        if model.url is not None or model.repo is None or not is_commit_id(model.commit or ""):
            log.info("serve.skipped", lock=str(path), model=model.name, reason="not a Hub model")
            continue
        assert model.commit is not None
        files = tuple(PinnedFile(f.path, f.size, f.sha256) for f in model.files)
        revision = model.revision or DEFAULT_BRANCH
        pins.append(Pin(str(path), model.repo, revision, model.commit, files))
    return pins


def keep_as_roots(layout: StoreLayout, locks: list[tuple[Path, Lockfile]]) -> None:
    """Register each served lock no sync registered as a root of the store, so `gc` keeps
    what pull-through brings for it (a lock synced here keeps its own target)."""
    with exclusive(layout.lock_path, wait=True):
        known = {root.lock for root in roots.registered(layout)}
        for path, lock in locks:
            if roots.absolute(path) not in known:
                roots.register(layout, path, path.parent, lock)


@dataclass(slots=True)
class LockSet:
    """The served locks, read again when one of them changes on disk (a `lock --upgrade` on
    the mirror is served without a restart); a lock that fails to read keeps the old plan."""

    paths: tuple[Path, ...]
    layout: StoreLayout
    pulls: bool
    _seen: dict[Path, tuple[int, int, int] | None] = field(default_factory=dict)

    def _stamps(self) -> dict[Path, tuple[int, int, int] | None]:
        stamps: dict[Path, tuple[int, int, int] | None] = {}
        for path in self.paths:
            try:
                st = path.stat()
            except OSError:
                stamps[path] = None
                continue
            stamps[path] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return stamps

    def load(self) -> dict[str, MirrorRepo]:
        """The repositories the locks pin now (UsageError naming a lock that does not do)."""
        self._seen = self._stamps()
        locks = read_locks(self.paths)
        repos = plan_mirror(pin for path, lock in locks for pin in pins_of(path, lock))
        if self.pulls:
            keep_as_roots(self.layout, locks)
        log.info("serve.locked", locks=len(locks), repos=len(repos))
        return repos

    def reload(self) -> dict[str, MirrorRepo] | None:
        """The new plan if a lock changed since the last look, else None."""
        if self._stamps() == self._seen:
            return None
        try:
            return self.load()
        except ModelsyncError as err:  # e.g. half-edited, or now pinning a conflicting commit
            log.warning("serve.reload_failed", error=err.message)
            return None


@dataclass(slots=True)
class StoreBlobs:
    """Locked files from this machine's blob store, as they are (clients verify every byte
    against their own lock, so bytes that went bad here fail there with exit 4)."""

    layout: StoreLayout
    pulls: bool = False

    def local(self, sha256: str) -> Path | None:
        """The blob's file if the store has it."""
        path = self.layout.blob_path(sha256)
        return path if path.is_file() else None

    async def bring(self, repo_id: str, commit: str, file: PinnedFile) -> Path:
        """The blob's file; a 404 naming the fix when the store lacks it."""
        path = self.local(file.sha256)
        if path is None:
            raise EntryNotFoundError(
                file.path,
                commit,
                f"{repo_id}/{file.path} is locked but not in this mirror's store: run "
                "`modelsync sync` for its lock on the mirror, or serve with --pull-through",
            )
        return path

    async def stream(self, repo_id: str, commit: str, file: PinnedFile) -> Path:
        """The blob's file (nothing here is ever on its way)."""
        return await self.bring(repo_id, commit, file)


class _Pull:
    """One blob on its way in, as its streaming readers see it (a `server.source.Pulling`):
    the fetch engine's gap-free prefix of the partial, the last byte held back until the
    whole file verified."""

    def __init__(self, blob: Path, size: int) -> None:
        self.blob = blob
        self.size = size
        self.fd: int | None = None
        """Our own descriptor of the partial: it stays valid when the partial becomes the blob."""
        self.prefix = 0
        self.verified = False
        self.error: HubError | None = None
        self.opened = False
        self._moved = asyncio.Event()

    def ready(self) -> int:
        if self.error is not None:
            raise self.error
        return self.size if self.verified else min(self.prefix, self.size - 1)

    async def changed(self) -> None:
        await self._moved.wait()

    def open(self) -> BinaryIO:
        self.opened = True
        if self.fd is None:  # verified without a partial of ours (another process fetched it)
            return self.blob.open("rb")
        return os.fdopen(os.dup(self.fd), "rb")

    def moved(self) -> None:
        """Wake the readers (they look at `ready` again)."""
        self._moved.set()
        self._moved = asyncio.Event()

    def end(self, error: HubError | None) -> None:
        """The pull is over: verified and in the store, or failed."""
        if error is None:
            self.verified, self.prefix = True, self.size
        else:
            self.error = error
        if self.fd is not None:
            os.close(self.fd)  # each reader holds its own duplicate
            self.fd = None
        self.moved()


@dataclass(slots=True)
class PullThrough:
    """`StoreBlobs`, and a miss fetched from `upstream` by the transfer engine (`fetch_blob`:
    verified against the lock's SHA-256 before it enters the store; the store's per-blob
    `.fetching` flock makes another process wait for it rather than fetch it again)."""

    layout: StoreLayout
    upstream: str
    fetcher: Fetcher
    pulls: bool = True
    _inflight: dict[str, asyncio.Task[Path]] = field(default_factory=dict)
    _streams: dict[str, _Pull] = field(default_factory=dict)

    def local(self, sha256: str) -> Path | None:
        """The blob's file if the store has it."""
        path = self.layout.blob_path(sha256)
        return path if path.is_file() else None

    async def bring(self, repo_id: str, commit: str, file: PinnedFile) -> Path:
        """The blob's file, fetched first if missing; one download for all who ask at once."""
        path = self.local(file.sha256)
        if path is not None:
            return path
        # A client that goes away does not cancel the download the others wait for.
        return await asyncio.shield(self._start(repo_id, commit, file))

    async def stream(self, repo_id: str, commit: str, file: PinnedFile) -> Path | _Pull:
        """The blob's file if here, else its pull (started if none is under way), whose bytes
        a client gets as they arrive: a large cold file starts flowing at once."""
        path = self.local(file.sha256)
        if path is not None:
            return path
        self._start(repo_id, commit, file)
        return self._streams[file.sha256]

    def _start(self, repo_id: str, commit: str, file: PinnedFile) -> asyncio.Task[Path]:
        task = self._inflight.get(file.sha256)
        if task is None:
            task = asyncio.create_task(self._pull(repo_id, commit, file))
            self._inflight[file.sha256] = task
            self._streams[file.sha256] = _Pull(self.layout.blob_path(file.sha256), file.size)
            task.add_done_callback(functools.partial(self._done, file.sha256))
        return task

    def watch(self, item: FetchItem, partial: Partial) -> None:
        """`Fetcher.watch`: the prefix of a pull's partial moved (or was reset)."""
        pull = self._streams.get(item.sha256)
        if pull is None:
            return
        if partial.size < pull.prefix and pull.opened:
            # Started over (wrong bytes, or upstream's file changed): what readers got may
            # be wrong, so their answers are cut; later clients follow the new bytes.
            pull.end(HubError(502, f"{item.label}: the pull from upstream started over"))
            pull = self._streams[item.sha256] = _Pull(pull.blob, pull.size)
        if pull.fd is None:
            pull.fd = os.dup(partial.fd)
        pull.prefix = partial.size
        pull.moved()

    def _done(self, sha256: str, task: asyncio.Task[Path]) -> None:
        self._inflight.pop(sha256, None)
        pull = self._streams.pop(sha256)
        error = None if task.cancelled() else task.exception()
        if error is None and not task.cancelled():
            pull.end(None)
        else:
            pull.end(error if isinstance(error, HubError) else HubError(502, "the pull stopped"))

    async def _pull(self, repo_id: str, commit: str, file: PinnedFile) -> Path:
        from modelsync.fetch.download import FetchItem, fetch_blob  # noqa: PLC0415

        label = f"{repo_id}/{file.path}"
        url = hub_file_url(self.upstream, repo_id, commit, file.path)
        try:
            result = await fetch_blob(self.fetcher, FetchItem(url, file.size, file.sha256, label))
        except IntegrityError as err:
            log.warning("serve.pull_refused", file=label, error=err.message)
            raise HubError(
                502, f"{label}: upstream sent other bytes than the lock pins; nothing served"
            ) from err
        except ModelsyncError as err:
            log.warning("serve.pull_failed", file=label, error=err.message)
            raise HubError(502, f"{label}: upstream {redact_url(self.upstream)}: {err}") from err
        log.info(
            "serve.pulled", file=label, bytes=result.received, seconds=round(result.seconds, 3)
        )
        return self.layout.blob_path(file.sha256)


def upstream_endpoint(registry: str, environ: Mapping[str, str]) -> tuple[str, str]:
    """`--pull-through REGISTRY`: (registry name for credentials, endpoint). `hf` is the Hub
    (`$HF_ENDPOINT`, else huggingface.co); anything else must be an http(s) URL."""
    from modelsync.rules import hub_endpoint  # noqa: PLC0415

    if registry == "hf":
        return "hf", hub_endpoint(None, environ)
    if not registry.startswith(("http://", "https://")):
        raise UsageError(
            f"--pull-through {registry}: expected `hf` or the URL of a Hub-compatible registry",
            hint="e.g. --pull-through hf, or --pull-through https://hub.corp.example",
        )
    return "upstream", registry.rstrip("/")


@contextlib.asynccontextmanager
async def _blob_source(request: ServeRequest, layout: StoreLayout) -> AsyncIterator[BlobSource]:
    if request.pull_through is None:
        yield StoreBlobs(layout)
        return
    from modelsync.credentials import grant  # noqa: PLC0415
    from modelsync.fetch.download import Fetcher  # noqa: PLC0415
    from modelsync.net.session import Credentials, create_session  # noqa: PLC0415
    from modelsync.store.locking import exclusive_async  # noqa: PLC0415

    name, endpoint = upstream_endpoint(request.pull_through, request.environ)
    access = grant(name, "huggingface", endpoint, None, request.environ)
    tokens = {endpoint: access.token} if access.token else {}
    layout.tmp_dir.mkdir(parents=True, exist_ok=True)
    async with create_session(connections=64) as session:
        fetcher = Fetcher(
            session=session,
            layout=layout,
            credentials=Credentials(tokens),
            admit=functools.partial(exclusive_async, layout.lock_path, wait=True),
        )
        log.info("serve.pull_through", upstream=redact_url(endpoint))
        pulls = PullThrough(layout, endpoint, fetcher)
        pulls.fetcher = dataclasses.replace(fetcher, watch=pulls.watch)
        yield pulls


async def _serve_until_signal(request: ServeRequest, on_ready: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        source = None
        if request.locks:
            if request.store is None:
                raise UsageError("serve --lock needs a store", hint="pass --store PATH")
            layout = StoreLayout(request.store)
            locks = LockSet(request.locks, layout, pulls=request.pull_through is not None)
            repos = locks.load()
            blobs = await stack.enter_async_context(_blob_source(request, layout))
            source = LockedRepos(repos, blobs, reload=locks.reload)
        server = asyncio.create_task(serve(_config(request, source), on_ready=on_ready))
        stopper = asyncio.create_task(stop.wait())
        await asyncio.wait({server, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in (server, stopper):
            task.cancel()
        # A server that died on its own re-raises its error here; a cancelled one is a clean stop.
        with contextlib.suppress(asyncio.CancelledError):
            await server


def serve_until_stopped(request: ServeRequest, *, on_ready: Callable[[str], None]) -> None:
    """Serve until interrupted; a clean stop (Ctrl-C, SIGTERM) returns normally."""
    if request.locks and request.root is not None:
        raise UsageError(
            "--root and --lock/--project contradict each other: one server serves folders or locks",
            hint="run two servers on two ports",
        )
    if request.locks and request.cdn_host:
        raise UsageError("--cdn-host is not available with --lock", hint="drop --cdn-host")
    if request.pull_through and not request.locks:
        raise UsageError("--pull-through needs --lock or --project", hint="name the locks to serve")
    if not request.locks:
        _config(request, None)  # refuses a bad --root before the event loop starts
    asyncio.run(_serve_until_signal(request, on_ready))
