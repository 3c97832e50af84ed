"""The thin driver of `lock.steps`: one session, one client per registry, each answer fetched
once and shared between models (same repo, same file). Models resolve concurrently (bounded by
`jobs`); the first failure in name order is raised, so messages are deterministic.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import aiohttp

from modelsync.credentials import grant
from modelsync.errors import ModelsyncError, UsageError
from modelsync.gguf.header import (
    INITIAL_WINDOW,
    GgufFormatError,
    GgufHeader,
    NeedMoreBytes,
    next_window,
    parse_header,
)
from modelsync.hardware.model import HardwareProfile
from modelsync.lock.steps import (
    Answer,
    Header,
    Listing,
    ModelOutcome,
    Need,
    Steps,
    resolution,
)
from modelsync.log import get_logger
from modelsync.manifest.model import DEFAULT_REVISION, ModelRequest, RegistryRef
from modelsync.net.retry import RetryPolicy
from modelsync.net.session import Credentials, create_session
from modelsync.registry.base import Registry
from modelsync.registry.errors import RegistryProtocolError
from modelsync.registry.hf import HubRegistry
from modelsync.registry.http import Http, Rules
from modelsync.registry.model import RepoSnapshot
from modelsync.registry.ollama import OllamaRegistry
from modelsync.registry.url import UrlFiles
from modelsync.rules import DEFAULT_OLLAMA_ENDPOINT

log = get_logger(__name__)

DEFAULT_JOBS = 64
"""Models resolved at once: metadata requests are small, so latency, not bandwidth, bounds them."""
_DEFAULT_RETRY = RetryPolicy()
_T = TypeVar("_T")
RangeReader = Callable[[int, int], Awaitable[bytes]]
HEADER_ARRAY_LIMIT = 256


async def resolve_models(
    models: Sequence[ModelRequest],
    profiles: Sequence[HardwareProfile],
    pins: Mapping[str, str],
    *,
    environ: Mapping[str, str],
    retry: RetryPolicy = _DEFAULT_RETRY,
    jobs: int = DEFAULT_JOBS,
    offline: bool = False,
) -> tuple[list[ModelOutcome], int]:
    """Resolve `models` for `profiles` (`pins`: model → locked commit to keep); returns the
    outcomes in the order given and the HTTP requests sent."""
    if not models:
        return [], 0
    if offline:
        raise UsageError(
            f"--offline: {', '.join(m.name for m in models)} must be resolved against a registry",
            hint="run `modelsync lock` without --offline (or unset HF_HUB_OFFLINE)",
        )
    jobs = max(jobs, 1)
    async with create_session(connections=max(jobs, 4)) as session:
        driver = _Driver(session, environ, retry)
        gate = asyncio.Semaphore(jobs)

        async def one(model: ModelRequest) -> ModelOutcome:
            async with gate:
                steps = resolution(model, profiles, pins.get(model.name))
                return await driver.drive(model, steps)

        results = await asyncio.gather(*(one(m) for m in models), return_exceptions=True)
    outcomes = []
    for result in results:
        if isinstance(result, BaseException):
            raise result
        outcomes.append(result)
    return outcomes, sum(r.requests for r in driver.registries.values())


@dataclass(frozen=True, slots=True)
class Upstream:
    """One model as `outdated` finds it: the registry's snapshot at its revision and, when the
    commit moved, the model resolved there as `lock --upgrade` would (or the error)."""

    name: str
    snapshot: RepoSnapshot | None = None
    outcome: ModelOutcome | None = None
    error: ModelsyncError | None = None


async def check_models(
    models: Sequence[ModelRequest],
    locked: Mapping[str, str],
    profiles: Sequence[HardwareProfile],
    *,
    environ: Mapping[str, str],
    retry: RetryPolicy = _DEFAULT_RETRY,
    jobs: int = DEFAULT_JOBS,
) -> tuple[list[Upstream], int]:
    """Ask where each model's revision points now (one request per model, `jobs` at once) and
    resolve again only those that moved from their `locked` commit; a model's error is kept in
    its answer, so one registry that is down does not hide what the others say."""
    jobs = max(jobs, 1)
    async with create_session(connections=max(jobs, 4)) as session:
        driver = _Driver(session, environ, retry)
        gate = asyncio.Semaphore(jobs)

        async def one(model: ModelRequest) -> Upstream:
            async with gate:
                try:
                    snapshot = await driver.listing(model)
                    if snapshot.commit == locked.get(model.name):
                        return Upstream(model.name, snapshot)
                    # The steps' first need is this same listing: answered from the memo.
                    steps = resolution(model, profiles, None)
                    return Upstream(model.name, snapshot, await driver.drive(model, steps))
                except ModelsyncError as err:
                    return Upstream(model.name, error=err)

        found = await asyncio.gather(*(one(m) for m in models))
    return list(found), sum(r.requests for r in driver.registries.values())


class _Driver:
    """Answers the steps' needs for one `lock` run."""

    def __init__(
        self, session: aiohttp.ClientSession, environ: Mapping[str, str], retry: RetryPolicy
    ) -> None:
        self.session = session
        self.environ = environ
        self.rules = Rules(retry)
        self.registries: dict[str, Registry] = {}
        self._memo: dict[tuple[str, ...], asyncio.Future[Any]] = {}

    async def drive(self, model: ModelRequest, steps: Steps) -> ModelOutcome:
        """Run one model's steps to the end, feeding back each answer (or error)."""
        registry = self._registry(model.registry)
        try:
            need = next(steps)
            while True:
                try:
                    answer = await self._answer(registry, need)
                except ModelsyncError as err:
                    need = steps.throw(err)
                else:
                    need = steps.send(answer)
        except StopIteration as done:
            outcome = cast(ModelOutcome, done.value)
        bound = log.bind(model=model.name)
        for explained in outcome.explained:
            for note in explained.choice.notes:
                bound.warning("lock.warning", note=note, profile=explained.profile)
        first = outcome.entries[0]
        bound.info(
            "lock.resolved",
            commit=first.commit,
            quant=[e.quant for e in outcome.entries],
            files=len(first.files),
        )
        return outcome

    async def listing(self, model: ModelRequest) -> RepoSnapshot:
        """The snapshot of `model` at its manifest revision (shared with its steps' first need)."""
        source = model.url or model.repo
        assert source is not None
        need = Listing(source, model.revision or DEFAULT_REVISION)
        snapshot = await self._answer(self._registry(model.registry), need)
        assert isinstance(snapshot, RepoSnapshot)
        return snapshot

    async def _answer(self, registry: Registry, need: Need) -> Answer:
        name = registry.name
        if isinstance(need, Listing):
            source, revision = need.source, need.revision
            return await self._once(
                ("snapshot", name, source, revision),
                lambda: registry.snapshot(source, revision),
            )
        snapshot = need.snapshot
        source, commit = snapshot.repo, snapshot.commit
        if isinstance(need, Header):
            path = need.path
            return await self._once(
                ("header", name, source, commit, path),
                lambda: read_gguf_header(
                    lambda start, end: registry.read_range(source, commit, path, start, end),
                    snapshot.where_of(path),
                ),
            )
        hashed = await asyncio.gather(
            *(
                self._once(
                    ("hash", name, source, commit, f.path),
                    lambda f=f: registry.hash_file(source, commit, f),  # type: ignore[misc]
                )
                for f in need.files
            )
        )
        return {f.path: h for f, h in zip(need.files, hashed, strict=True)}

    def _registry(self, ref: RegistryRef) -> Registry:
        """The client of a registry of the manifest, built once, with the token it is granted."""
        if ref.name not in self.registries:
            access = grant(ref.name, ref.type, ref.endpoint, ref.token_env, self.environ)
            by_origin = {access.endpoint: access.token} if access.endpoint and access.token else {}
            http = Http(self.session, Credentials(by_origin), self.rules)
            if ref.type == "huggingface":
                assert access.endpoint is not None
                self.registries[ref.name] = HubRegistry(
                    name=ref.name,
                    endpoint=access.endpoint,
                    http=http,
                    token_env=access.variable,
                    has_token=access.token is not None,
                )
            elif ref.type == "ollama":
                self.registries[ref.name] = OllamaRegistry(
                    name=ref.name,
                    endpoint=access.endpoint or DEFAULT_OLLAMA_ENDPOINT,
                    http=http,
                    token_env=access.variable,
                    has_token=access.token is not None,
                )
            else:
                variable = access.variable if access.endpoint else None
                self.registries[ref.name] = UrlFiles(ref.name, http, token_env=variable)
        return self.registries[ref.name]

    async def _once(self, key: tuple[str, ...], make: Callable[[], Awaitable[_T]]) -> _T:
        """Run `make` once per key, sharing the result between models."""
        if key not in self._memo:
            self._memo[key] = asyncio.ensure_future(make())
        return cast(_T, await self._memo[key])


async def read_gguf_header(read: RangeReader, where: str) -> GgufHeader:
    """Parse a remote GGUF header with ranged reads: 2 MiB first, doubling up to 64 MiB."""
    window = INITIAL_WINDOW
    data = await read(0, window - 1)
    while True:
        try:
            # Keep per-layer arrays (head counts); skip vocabularies, which only cost time here.
            return parse_header(data, inline_limit=HEADER_ARRAY_LIMIT)
        except NeedMoreBytes as more:
            if len(data) < window:
                raise RegistryProtocolError(
                    f"{where}: the file ends at byte {len(data)}, inside its GGUF header",
                    hint="the registry serves a truncated file; check it upstream",
                ) from more
            grown = next_window(window, more.needed)
            if grown is None:
                raise RegistryProtocolError(
                    f"{where}: the GGUF header is larger than {window} bytes; not reading further",
                    hint="pin a quantization with quant = ... to skip the estimate",
                ) from more
            data += await read(len(data), grown - 1)
            window = grown
        except GgufFormatError as err:
            raise RegistryProtocolError(
                f"{where}: not a readable GGUF file: {err}",
                hint="the registry serves something else under a .gguf name (an LFS pointer?)",
            ) from err
