"""`modelsync lock`: models.toml → registries → choices → models.lock (or `--check`, offline).

Wiring only: the manifest loader, hardware detection, registry clients, the pure resolver and
the lockfile renderer meet here. Models resolve concurrently (bounded by `jobs`), each with one
listing request, one ranged read of a GGUF header and, for non-LFS files, one small download.
Existing pins are kept unless upgrading or the model's manifest entry changed (like uv): a
model whose inputs digest matches its locked entries costs no request at all. The lock is
written once, at the end, and only if its bytes change; any failure writes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

import aiohttp
import structlog

from modelsync import paths
from modelsync.credentials import grant
from modelsync.errors import StaleError, UsageError
from modelsync.fetch.retry import RETRYABLE_STATUS, RetryPolicy, retry_after_seconds
from modelsync.fetch.session import Credentials, create_session
from modelsync.gguf.header import (
    INITIAL_WINDOW,
    GgufArray,
    GgufFormatError,
    GgufHeader,
    NeedMoreBytes,
    next_window,
    parse_header,
)
from modelsync.hardware.detect import detect
from modelsync.hardware.model import HardwareProfile, declared
from modelsync.lockfile.freshness import freshness, reusable
from modelsync.lockfile.io import read_lock, write_lock
from modelsync.lockfile.model import LOCK_VERSION, LockedFile, LockedModel, LockedProfile, Lockfile
from modelsync.lockfile.render import render_lock
from modelsync.manifest.load import load_manifest
from modelsync.manifest.model import ModelRequest, Project, RegistryRef, canonical_digest
from modelsync.ops.project import origin_of, origins, profile_names
from modelsync.registry.errors import RegistryProtocolError, RevisionNotFoundError
from modelsync.registry.hf import HubRegistry
from modelsync.registry.http import Http, Rules
from modelsync.registry.model import RepoSnapshot
from modelsync.registry.url import UrlFiles
from modelsync.resolve.gguf import catalog, pinned_file
from modelsync.resolve.model import Choice, Machine, ModelShape, RepoFile, Want
from modelsync.resolve.select import select
from modelsync.rules import HF_ENDPOINT_ENV
from modelsync.sync.desired import machine_of

log = structlog.get_logger(__name__)

DEFAULT_JOBS = 64
"""Models resolved at once: metadata requests are small, so latency, not bandwidth, bounds them."""
_T = TypeVar("_T")
Detector = Callable[[], HardwareProfile]


@dataclass(frozen=True, slots=True)
class LockRequest:
    """What the user asked `lock` for."""

    manifest: Path
    check: bool = False
    upgrade: bool = False
    upgrade_models: tuple[str, ...] = ()
    profile: str | None = None
    explain: bool = False
    offline: bool = False
    jobs: int = DEFAULT_JOBS
    environ: Mapping[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    detector: Detector = detect


@dataclass(frozen=True, slots=True)
class Explained:
    """One model on one profile: the machine and the resolver's choice with its rows."""

    profile: str
    machine: Machine
    choice: Choice


@dataclass(frozen=True, slots=True)
class ModelOutcome:
    """What `lock` did for one model."""

    name: str
    source: str
    entries: tuple[LockedModel, ...]
    reused: bool
    """Kept from the existing lock without asking any registry."""
    explained: tuple[Explained, ...] = ()


@dataclass(frozen=True, slots=True)
class LockReport:
    """The result of `lock` (or `lock --check`)."""

    lock_path: Path
    written: bool
    models: tuple[ModelOutcome, ...] = ()
    profiles: tuple[LockedProfile, ...] = ()
    requests: int = 0
    seconds: float = 0.0
    checked: bool = False


async def lock_project(request: LockRequest) -> LockReport:
    """Run `lock` as asked; raises ModelsyncError subclasses (exit codes in errors.py)."""
    started = time.monotonic()
    project = load_manifest(request.manifest, hub_endpoint=request.environ.get(HF_ENDPOINT_ENV))
    lock_path = paths.lock_path_for(request.manifest)
    existing = read_lock(lock_path)
    digest = project.digest()
    if request.check:
        verdict = freshness(existing, digest, origins(project), profile_names(project))
        if not verdict:
            raise StaleError(
                f"{lock_path} is stale: {verdict.reason}", hint="run `modelsync lock` and commit it"
            )
        return LockReport(lock_path=lock_path, written=False, checked=True)
    unknown = sorted(set(request.upgrade_models) - {m.name for m in project.models})
    if unknown:
        raise UsageError(
            f"--upgrade-model {', '.join(unknown)}: no such model in {request.manifest}",
            hint=f"models: {', '.join(m.name for m in project.models) or 'none'}",
        )
    profiles = target_profiles(project, request.profile, request.detector)
    resolver = Resolver(request, project, existing, profiles)
    outcomes, requests = await resolver.run()
    lock = Lockfile(
        version=LOCK_VERSION,
        manifest_digest=digest,
        profiles=tuple(locked_profile(p) for p in profiles if p.source == "declared"),
        models=tuple(e for o in outcomes for e in o.entries),
    )
    written = write_lock(lock_path, render_lock(lock))
    seconds = time.monotonic() - started
    log.info(
        "lock.written" if written else "lock.unchanged",
        path=str(lock_path),
        models=len(outcomes),
        resolved=sum(not o.reused for o in outcomes),
        requests=requests,
        seconds=round(seconds, 3),
    )
    return LockReport(
        lock_path=lock_path,
        written=written,
        models=tuple(outcomes),
        profiles=lock.profiles,
        requests=requests,
        seconds=seconds,
    )


# ---- profiles ------------------------------------------------------------------------------


def target_profiles(
    project: Project, only: str | None, detector: Detector
) -> list[HardwareProfile]:
    """The declared profiles (or only `only`), else this machine's detected profile."""
    if only is not None:
        wanted = project.profile(only)
        if wanted is None:
            declared_names = ", ".join(p.name for p in project.profiles)
            raise UsageError(
                f"--profile {only}: no [profiles.{only}] in models.toml",
                hint=f"declared profiles: {declared_names}"
                if declared_names
                else f'declare it, e.g. [profiles.{only}] ram = "16GiB"',
            )
        return [_declared(wanted.name, project)]
    if project.profiles:
        return [_declared(p.name, project) for p in project.profiles]
    return [detector()]


def _declared(name: str, project: Project) -> HardwareProfile:
    spec = project.profile(name)
    assert spec is not None
    return declared(name, ram=spec.ram, vram=spec.vram, gpus=spec.gpus, unified=spec.unified)


def locked_profile(profile: HardwareProfile) -> LockedProfile:
    """How a profile is recorded in the lock."""
    return LockedProfile(
        name=profile.name,
        source=profile.source,
        fingerprint=profile.fingerprint(),
        ram=profile.ram_total,
        vram=profile.vram_total if not profile.unified else 0,
        gpus=len(profile.gpus) if not profile.unified else 0,
        unified=profile.unified,
    )


def inputs_digest(model: ModelRequest, profiles: Sequence[HardwareProfile]) -> str:
    """Digest of what one model's entries depend on: its manifest entry and the declared
    profiles. Never the detected machine: a lock made on one machine is kept on every other."""
    return canonical_digest(
        {
            "model": model.canonical(),
            "profiles": [[p.name, p.fingerprint()] for p in profiles if p.source == "declared"],
        }
    )


def legacy_inputs(model: ModelRequest, lock: Lockfile) -> str | None:
    """The inputs digest an older modelsync wrote next to a `detected` [[profile]] (its
    fingerprint was part of it), so such a lock keeps its choices; None for a current lock."""
    detected = [[p.name, p.fingerprint] for p in lock.profiles if p.source == "detected"]
    if not detected:
        return None
    return canonical_digest({"model": model.canonical(), "profiles": detected})


# ---- GGUF headers ----------------------------------------------------------------------------


RangeReader = Callable[[int, int], Awaitable[bytes]]
HEADER_ARRAY_LIMIT = 256


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


def shape_of(header: GgufHeader) -> ModelShape | None:
    """The memory-relevant shape of a model header; None if it lacks layers, width or heads."""
    layers, width, heads = header.block_count, header.embedding_length, header.head_count
    if not layers or not width or not heads:
        return None
    n_head = max(heads) if isinstance(heads, tuple) else heads
    kv = header.head_count_kv
    vocab = header.arch_value("vocab_size")
    tokens = header.metadata.get("tokenizer.ggml.tokens")
    if not isinstance(vocab, int):
        vocab = len(tokens) if isinstance(tokens, GgufArray) else 32000
    window = header.arch_value("attention.sliding_window")
    pattern = header.arch_value("attention.sliding_window_pattern")
    return ModelShape(
        architecture=header.architecture,
        n_layers=layers,
        n_embd=width,
        n_head=n_head,
        n_head_kv=kv if kv is not None else n_head,
        key_length=header.key_length,
        value_length=header.value_length,
        context_length=header.context_length,
        n_vocab=vocab,
        sliding_window=window if isinstance(window, int) and window > 0 else None,
        swa_pattern=pattern if isinstance(pattern, int) and pattern > 0 else None,
        header_size=header.header_size,
        parameter_count=header.parameter_count or None,
    )


# ---- resolution ------------------------------------------------------------------------------


def want_of(model: ModelRequest, where: str) -> Want:
    """The resolver's view of a manifest entry."""
    if model.url is not None:
        return Want(
            subject=f"models.{model.name}",
            source=where,
            mode="file",
            file=model.url.rsplit("/", 1)[-1].split("?", 1)[0],
            context=model.context,
            floor=model.quality_floor,
        )
    mode = "globs" if model.globs else "file" if model.file else model.quant.mode
    return Want(
        subject=f"models.{model.name}",
        source=where,
        mode=mode,
        labels=model.quant.labels,
        file=model.file,
        include=model.include,
        exclude=model.exclude,
        extras=model.extras,
        context=model.context,
        floor=model.quality_floor,
    )


class Resolver:
    """Resolves the models of one `lock` run, sharing listings and headers between them."""

    def __init__(
        self,
        request: LockRequest,
        project: Project,
        existing: Lockfile | None,
        profiles: Sequence[HardwareProfile],
    ) -> None:
        self.request = request
        self.project = project
        self.existing = existing
        self.profiles = list(profiles)
        self.machines = [machine_of(p) for p in profiles]
        self.environ = request.environ
        self._https: list[Http] = []
        self._hubs: dict[str, HubRegistry] = {}
        self._urls: dict[str, UrlFiles] = {}
        self._memo: dict[tuple[str, ...], asyncio.Future[Any]] = {}
        self._session: aiohttp.ClientSession | None = None

    async def run(self, names: Sequence[str] | None = None) -> tuple[list[ModelOutcome], int]:
        """Resolve every model (or `names`); returns outcomes in name order and requests sent."""
        models = [m for m in self.project.models if names is None or m.name in names]
        work: list[ModelRequest] = []
        outcomes: dict[str, ModelOutcome] = {}
        for model in models:
            kept = self._kept(model)
            if kept is not None:
                outcomes[model.name] = kept
            else:
                work.append(model)
        if work:
            if self.request.offline:
                raise UsageError(
                    f"--offline: {', '.join(m.name for m in work)} must be resolved against "
                    "a registry",
                    hint="run `modelsync lock` without --offline (or unset HF_HUB_OFFLINE)",
                )
            jobs = max(self.request.jobs, 1)
            async with create_session(connections=max(jobs, 4)) as self._session:
                gate = asyncio.Semaphore(jobs)

                async def one(model: ModelRequest) -> ModelOutcome:
                    async with gate:
                        return await self._resolve(model)

                results = await asyncio.gather(*(one(m) for m in work), return_exceptions=True)
            for model, result in zip(work, results, strict=True):
                if isinstance(result, BaseException):
                    raise result  # the first failure in name order: deterministic messages
                outcomes[model.name] = result
        requests = sum(h.requests for h in self._https)
        return [outcomes[m.name] for m in models], requests

    def _kept(self, model: ModelRequest) -> ModelOutcome | None:
        """The locked entries, when nothing asks for them to change."""
        upgrading = self.request.upgrade or model.name in self.request.upgrade_models
        if upgrading or self.request.explain or self.existing is None:
            return None
        inputs = inputs_digest(model, self.profiles)
        origin = origin_of(model)
        entries = self.existing.entries(model.name)
        if not reusable(self.existing, model.name, inputs, origin):
            legacy = legacy_inputs(model, self.existing)
            if legacy is None or not reusable(self.existing, model.name, legacy, origin):
                return None
            entries = tuple(e.model_copy(update={"inputs": inputs}) for e in entries)
        return ModelOutcome(model.name, model.source, entries, reused=True)

    def _pinned_commit(self, model: ModelRequest) -> str | None:
        """The locked commit to keep: same registry, repo and revision, and not upgrading."""
        if self.existing is None or self.request.upgrade:
            return None
        if model.name in self.request.upgrade_models:
            return None
        entries = self.existing.entries(model.name)
        if not entries:
            return None
        first = entries[0]
        same = (first.registry, first.repo, first.revision) == (
            model.registry.name,
            model.repo,
            model.revision,
        )
        return first.commit if same else None

    # ---- clients -------------------------------------------------------------------------

    def _http(self, endpoint: str | None, token: str | None) -> Http:
        by_origin = {endpoint: token} if endpoint and token else {}
        rules = Rules(self.request.retry, RETRYABLE_STATUS, retry_after_seconds)
        assert self._session is not None
        http = Http(self._session, Credentials(by_origin), rules)
        self._https.append(http)
        return http

    def _hub(self, ref: RegistryRef) -> HubRegistry:
        if ref.name not in self._hubs:
            access = grant(ref.name, ref.type, ref.endpoint, ref.token_env, self.environ)
            assert access.endpoint is not None
            self._hubs[ref.name] = HubRegistry(
                name=ref.name,
                endpoint=access.endpoint,
                http=self._http(access.endpoint, access.token),
                token_env=access.variable,
                has_token=access.token is not None,
            )
        return self._hubs[ref.name]

    def _url(self, ref: RegistryRef) -> UrlFiles:
        if ref.name not in self._urls:
            access = grant(ref.name, ref.type, ref.endpoint, ref.token_env, self.environ)
            self._urls[ref.name] = UrlFiles(
                ref.name,
                self._http(access.endpoint, access.token),
                token_env=access.variable if access.endpoint else None,
            )
        return self._urls[ref.name]

    async def _once(self, key: tuple[str, ...], make: Callable[[], Awaitable[_T]]) -> _T:
        """Run `make` once per key, sharing the result between models (same repo, same file)."""
        if key not in self._memo:
            self._memo[key] = asyncio.ensure_future(make())
        return cast(_T, await self._memo[key])

    # ---- one model -----------------------------------------------------------------------

    async def _resolve(self, model: ModelRequest) -> ModelOutcome:
        bound = log.bind(model=model.name)
        if model.url is not None:
            outcome = await self._resolve_url(model)
        else:
            outcome = await self._resolve_hub(model)
        for explained in outcome.explained:
            for note in explained.choice.notes:
                bound.warning("lock.model.warning", note=note, profile=explained.profile)
        first = outcome.entries[0]
        bound.info(
            "lock.model.resolved",
            commit=first.commit,
            quant=[e.quant for e in outcome.entries],
            files=len(first.files),
        )
        return outcome

    async def _resolve_hub(self, model: ModelRequest) -> ModelOutcome:
        assert model.repo is not None
        assert model.revision is not None
        hub = self._hub(model.registry)
        pinned = self._pinned_commit(model)
        repo = model.repo
        try:
            snapshot = await self._once(
                ("snapshot", hub.name, repo, pinned or model.revision),
                lambda: hub.snapshot(repo, pinned or model.revision or "main"),
            )
        except RevisionNotFoundError as err:
            if pinned is None:
                raise
            raise RevisionNotFoundError(
                f"{hub.name}:{repo} no longer has the locked commit {pinned}",
                hint=f"run `modelsync lock --upgrade-model {model.name}` to pin a current one",
            ) from err
        files = [RepoFile(f.path, f.size) for f in snapshot.files]
        want = want_of(model, snapshot.where)
        shape = await self._shape_for(hub, snapshot, want, files)
        choices = [select(want, files, shape, m) for m in self.machines]
        digests = await self._digests(hub, snapshot, choices)
        entries = self._entries(model, choices, digests, commit=snapshot.commit)
        return ModelOutcome(
            model.name,
            model.source,
            entries,
            reused=False,
            explained=tuple(
                Explained(m.name, m, c) for m, c in zip(self.machines, choices, strict=True)
            ),
        )

    async def _shape_for(
        self, hub: HubRegistry, snapshot: RepoSnapshot, want: Want, files: list[RepoFile]
    ) -> ModelShape | None:
        """The shape from one GGUF header of the repo (the named or pinned file where possible)."""
        if want.mode == "globs":
            return None
        path = None
        if want.mode == "file" and want.file is not None:
            variant = pinned_file(files, want.file)
            path = variant.first if variant is not None and variant.kind == "model" else None
        else:
            variants = catalog(files).variants
            named = [v for v in variants if want.labels and v.label == want.labels[0]]
            smallest = sorted(variants, key=lambda v: (v.size, v.first))
            pick = named or smallest
            path = pick[0].first if pick else None
        if path is None:
            return None
        where = f"{snapshot.where}: {path}"
        repo, commit = snapshot.repo, snapshot.commit
        header = await self._once(
            ("header", hub.name, repo, commit, path),
            lambda: read_gguf_header(
                lambda start, end: hub.read_range(repo, commit, path, start, end), where
            ),
        )
        return shape_of(header)

    async def _digests(
        self, hub: HubRegistry, snapshot: RepoSnapshot, choices: Sequence[Choice]
    ) -> dict[str, str]:
        """SHA-256 of every chosen file: from the listing, or fetched and hashed (non-LFS)."""
        digests: dict[str, str] = {}
        missing = []
        for path in sorted({f.path for c in choices for f in c.files}):
            listed = snapshot.file(path)
            assert listed is not None
            if listed.sha256 is not None:
                digests[path] = listed.sha256
            else:
                missing.append(listed)
        hashed = await asyncio.gather(
            *(
                self._once(
                    ("hash", hub.name, snapshot.repo, snapshot.commit, f.path),
                    lambda f=f: hub.hash_file(snapshot.repo, snapshot.commit, f),  # type: ignore[misc]
                )
                for f in missing
            )
        )
        digests.update({f.path: h for f, h in zip(missing, hashed, strict=True)})
        return digests

    async def _resolve_url(self, model: ModelRequest) -> ModelOutcome:
        assert model.url is not None
        assert model.sha256 is not None
        files_client = self._url(model.registry)
        url = model.url
        size = await self._once(("size", url), lambda: files_client.size(url))
        want = want_of(model, url)
        assert want.file is not None
        files = [RepoFile(want.file, size)]
        shape = None
        if want.file.lower().endswith(".gguf"):
            header = await self._once(
                ("header", url),
                lambda: read_gguf_header(
                    lambda start, end: files_client.read_range(url, start, end), url
                ),
            )
            shape = shape_of(header)
        choices = [select(want, files, shape, m) for m in self.machines]
        entries = self._entries(model, choices, {want.file: model.sha256}, commit=None)
        return ModelOutcome(
            model.name,
            model.source,
            entries,
            reused=False,
            explained=tuple(
                Explained(m.name, m, c) for m, c in zip(self.machines, choices, strict=True)
            ),
        )

    def _entries(
        self,
        model: ModelRequest,
        choices: Sequence[Choice],
        digests: Mapping[str, str],
        *,
        commit: str | None,
    ) -> tuple[LockedModel, ...]:
        """One entry when every profile chose the same files, else one per profile."""
        inputs = inputs_digest(model, self.profiles)

        def entry(choice: Choice, profile: str | None, reason: str) -> LockedModel:
            return LockedModel(
                name=model.name,
                registry=model.registry.name,
                repo=model.repo,
                url=model.url,
                revision=model.revision if model.url is None else None,
                commit=commit,
                profile=profile,
                quant=choice.quant,
                context=choice.context,
                memory=choice.memory,
                reason=reason,
                inputs=inputs,
                files=tuple(
                    LockedFile(path=f.path, size=f.size, sha256=digests[f.path])
                    for f in choice.files
                ),
            )

        first = choices[0]
        if all(c.same_files(first) for c in choices):
            return (entry(first, None, merged_reason(choices)),)
        return tuple(entry(c, c.profile, c.reason) for c in choices)


def merged_reason(choices: Sequence[Choice]) -> str:
    """One line for a choice every profile shares: each profile's fit in a few words."""
    first = choices[0]
    if len(choices) == 1 or first.fit is None:
        return first.reason
    label = first.quant or first.files[0].path
    parts = [
        f"{c.profile} {c.fit.describe()} ({c.fit.need_text()})" if c.fit else c.profile
        for c in choices
    ]
    context = f", ctx {first.context}" if first.context else ""
    return f"{label}: the same on every profile: {'; '.join(parts)}{context}"
