"""`modelsync search`: a registry's GGUF repositories, filtered and ranked; `--files` lists one
repository's GGUF variants and marks the one `lock` would pick here; `--add` writes the entry.

Wiring only: the registry's listing (`registry.hf_search`), the pure filters and orders
(`search.rank`), the lock's own resolution for the pick (`lock.driver`), the manifest editor
(`manifest.edit`) and an atomic write meet here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from modelsync.atomic import write_text
from modelsync.credentials import grant
from modelsync.errors import ManifestError, NoVariantFitsError, UsageError
from modelsync.hardware.detect import detect
from modelsync.hardware.model import Detector, HardwareProfile
from modelsync.lock.driver import resolve_models
from modelsync.log import get_logger
from modelsync.manifest.edit import add_model
from modelsync.manifest.load import load_manifest, manifest_path, parse_manifest
from modelsync.manifest.model import DEFAULT_REGISTRY, ModelRequest, QuantChoice, RegistryRef
from modelsync.manifest.quants import canonical_label, suggest_label
from modelsync.net.retry import RetryPolicy
from modelsync.net.session import Credentials, create_session
from modelsync.registry.base import Searchable
from modelsync.registry.hf import HubRegistry
from modelsync.registry.hf_search import HubSearch
from modelsync.registry.http import Http, Rules
from modelsync.registry.listing import SearchQuery
from modelsync.resolve.gguf import catalog
from modelsync.resolve.model import RepoFile, describe
from modelsync.rules import HF_ENDPOINT_ENV, is_repo_part, is_safe_name
from modelsync.search.rank import (
    Hit,
    ParamRange,
    SortKey,
    accepts,
    hit_of,
    parse_params,
    size_in_name,
    top,
)

log = get_logger(__name__)

MAX_LIMIT = 100
RELEVANCE_POOL = 200
"""`--sort relevance` ranks the first this many matches by downloads (the registry cannot)."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    """What the user asked `search` for."""

    text: str | None = None
    registry: str = DEFAULT_REGISTRY
    author: str | None = None
    quant: str | None = None
    params: str | None = None
    gated: bool | None = None
    """True: gated repositories too (marked); None or False: open ones only."""
    sort: SortKey = "downloads"
    limit: int = 20
    files: str | None = None
    """A repository: list its GGUF variants instead of searching."""
    add: str | None = None
    manifest_flag: Path | None = None
    offline: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    detector: Detector = detect
    clock: Callable[[], float] = time.time


@dataclass(frozen=True, slots=True)
class Added:
    """The entry `--add` appended to the manifest."""

    manifest: Path
    name: str
    source: str
    quant: str | None


@dataclass(frozen=True, slots=True)
class SearchReport:
    """The hits, best first (falsy when none matched)."""

    registry: str
    sort: SortKey
    hits: tuple[Hit, ...]
    requests: int
    added: Added | None = None

    def __bool__(self) -> bool:
        return bool(self.hits)


@dataclass(frozen=True, slots=True)
class FileRow:
    """One GGUF variant of a repository."""

    quant: str
    path: str
    """Its first file (shard 1 of a split model)."""
    shards: int
    size: int
    parameters: int | None
    picked: bool


@dataclass(frozen=True, slots=True)
class FilesReport:
    """A repository's GGUF variants, best quality first, and what `lock` would pick here."""

    registry: str
    repo: str
    commit: str
    gated: bool
    rows: tuple[FileRow, ...]
    machine: str
    reason: str
    """Why the pick was made, or why nothing was picked."""
    requests: int
    added: Added | None = None

    def __bool__(self) -> bool:
        return bool(self.rows)


@dataclass(frozen=True, slots=True)
class _Plan:
    """The checked flags."""

    ref: RegistryRef
    manifest: Path | None
    quant: str | None
    params: ParamRange | None


async def search(request: SearchRequest) -> SearchReport | FilesReport:
    """Run `search` (or `search --files`) as asked; raises ModelsyncError subclasses."""
    plan = _check(request)
    grants = grant(
        plan.ref.name, "huggingface", plan.ref.endpoint, plan.ref.token_env, dict(request.environ)
    )
    assert grants.endpoint is not None
    by_origin = {grants.endpoint: grants.token} if grants.token else {}
    async with create_session(connections=4) as session:
        http = Http(session, Credentials(by_origin), Rules(request.retry))
        hub = HubRegistry(
            plan.ref.name, grants.endpoint, http, grants.variable, has_token=bool(by_origin)
        )
        if request.files is not None:
            report: SearchReport | FilesReport = await _files(request, plan, hub)
        else:
            report = await _search(request, plan, hub)
    if request.add is None:
        return report
    if isinstance(report, FilesReport) and not report:
        raise UsageError(
            f"--add {request.add}: {report.registry}:{report.repo} has no GGUF files",
            hint="add it to models.toml by hand with include globs",
        )
    repo = report.repo if isinstance(report, FilesReport) else _first(report)
    added = _add(plan, request.add, repo)
    log.info("search.added", manifest=str(added.manifest), model=added.name, source=added.source)
    return replace(report, added=added)


def _check(request: SearchRequest) -> _Plan:
    if request.offline:
        raise UsageError(
            "--offline: search asks a registry", hint="run it without --offline (or HF_HUB_OFFLINE)"
        )
    if not 1 <= request.limit <= MAX_LIMIT:
        raise UsageError(
            f"--limit {request.limit}: expected 1 to {MAX_LIMIT}", hint="e.g. --limit 20"
        )
    if request.files is not None and request.text:
        raise UsageError(
            f"search {request.text!r} --files {request.files}: give a query or --files, not both",
            hint="`modelsync search --files org/repo` lists one repository's files",
        )
    if request.files is not None and not _is_repo_id(request.files):
        raise UsageError(
            f"--files {request.files!r}: expected a repository id such as org/name",
            hint="copy it from the search results",
        )
    if request.add is not None and not is_safe_name(request.add):
        raise UsageError(
            f'--add "{request.add}": not a model name (letters, digits, ".", "_", "-")',
            hint="e.g. --add qwen",
        )
    quant = None
    if request.quant is not None:
        quant = canonical_label(request.quant)
        if quant is None:
            guess = suggest_label(request.quant)
            raise UsageError(
                f"--quant {request.quant}: not a known quantization",
                hint=f"did you mean {guess}?" if guess else "e.g. --quant Q4_K_M",
            )
    params = None
    if request.params is not None:
        params = parse_params(request.params)
        if params is None:
            raise UsageError(
                f"--params {request.params}: expected a size class such as 7B or a range 1B-8B",
                hint="units K, M, B, T",
            )
    manifest = _manifest(request)
    ref = _registry(request.registry, manifest, request.environ)
    return _Plan(ref, manifest, quant, params)


def _is_repo_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(is_repo_part(p) for p in parts)


def _manifest(request: SearchRequest) -> Path | None:
    """The manifest: needed for --add and for declared registries; optional otherwise."""
    try:
        return manifest_path(request.manifest_flag)
    except ManifestError:
        if request.add is not None or request.registry != DEFAULT_REGISTRY:
            raise
        return None


def _registry(name: str, manifest: Path | None, environ: Mapping[str, str]) -> RegistryRef:
    if manifest is None:
        return RegistryRef(DEFAULT_REGISTRY, "huggingface")
    project = load_manifest(manifest, hub_endpoint=environ.get(HF_ENDPOINT_ENV))
    ref = project.registries.get(name)
    if ref is None or ref.type != "huggingface":
        hubs = sorted(r.name for r in project.registries.values() if r.type == "huggingface")
        raise UsageError(
            f'--registry {name}: {manifest} declares no Hub-compatible registry "{name}"',
            hint=f"registries that search: {', '.join(hubs)}",
        )
    return ref


async def _search(request: SearchRequest, plan: _Plan, hub: HubRegistry) -> SearchReport:
    query = SearchQuery(
        text=request.text or None,
        author=request.author,
        sort="downloads" if request.sort == "relevance" else request.sort,
        include_gated=bool(request.gated),
        page_size=MAX_LIMIT,
    )
    wanted = RELEVANCE_POOL if request.sort == "relevance" else request.limit
    now = request.clock()
    hits: list[Hit] = []
    seen: set[str] = set()  # a registry whose pages overlap (or loop) lists a repo once
    searcher: Searchable = HubSearch(hub)
    async for summary in searcher.search(query):
        if summary.repo in seen:
            continue
        seen.add(summary.repo)
        hit = hit_of(summary, request.text, now)
        if accepts(hit, quant=plan.quant, params=plan.params):
            hits.append(hit)
            if len(hits) >= wanted:
                break
    found = tuple(top(hits, request.sort, request.limit))
    log.info("search.done", registry=hub.name, results=len(found), requests=hub.requests)
    return SearchReport(hub.name, request.sort, found, hub.requests)


async def _files(request: SearchRequest, plan: _Plan, hub: HubRegistry) -> FilesReport:
    assert request.files is not None
    repo = request.files
    snapshot = await hub.snapshot(repo, "main")
    found = catalog(RepoFile(f.path, f.size) for f in snapshot.files)
    total = snapshot.gguf.get("total")
    repo_params = total if isinstance(total, int) else size_in_name(repo)
    labels = found.labels()
    if plan.quant is not None and plan.quant not in labels:
        raise UsageError(
            f"--quant {plan.quant}: {snapshot.where} has no such GGUF file",
            hint=f"it has: {', '.join(labels) or 'no GGUF files'}",
        )
    profile = request.detector()
    picked, reason, requests = None, "it has no GGUF files (lock needs include globs)", 0
    if found:
        picked, reason, requests = await _pick(request, plan, profile, repo, snapshot.commit)
    rows = tuple(
        FileRow(
            quant=v.display,
            path=v.first,
            shards=len(v.files),
            size=v.size,
            parameters=size_in_name(v.first.rsplit("/", 1)[-1]) or repo_params,
            picked=v.first == picked,
        )
        for v in found.variants
    )
    return FilesReport(
        registry=hub.name,
        repo=repo,
        commit=snapshot.commit,
        gated=snapshot.gated,
        rows=rows,
        machine=describe(profile),
        reason=reason,
        requests=hub.requests + requests,
    )


async def _pick(
    request: SearchRequest, plan: _Plan, profile: HardwareProfile, repo: str, commit: str
) -> tuple[str | None, str, int]:
    """What `lock` picks on this machine: the lock's own resolution, pinned to `commit`; the
    first file of the pick (None if nothing fits), the reason and the requests it sent."""
    quant = QuantChoice("named", (plan.quant,)) if plan.quant else QuantChoice()
    model = ModelRequest(name=repo.rsplit("/", 1)[-1], registry=plan.ref, repo=repo, quant=quant)
    try:
        outcomes, requests = await resolve_models(
            [model],
            [profile],
            {model.name: commit},
            environ=request.environ,
            retry=request.retry,
        )
    except NoVariantFitsError as err:
        return None, err.message, 0
    choice = outcomes[0].explained[0].choice
    return (choice.files[0].path if choice.files else None), choice.reason, requests


def _first(report: SearchReport) -> str:
    if not report.hits:
        raise UsageError(
            "--add: the search found nothing to add", hint="widen the search, or use --files REPO"
        )
    return report.hits[0].summary.repo


def _add(plan: _Plan, name: str, repo: str) -> Added:
    """Append the entry (plan: the new text, checked as a manifest; then one atomic write)."""
    assert plan.manifest is not None
    source = repo if plan.ref.name == DEFAULT_REGISTRY else f"{plan.ref.name}://{repo}"
    text = plan.manifest.read_text(encoding="utf-8")
    new = add_model(text, name, source, plan.quant, where=str(plan.manifest))
    parse_manifest(new, str(plan.manifest))
    write_text(plan.manifest, new)
    return Added(plan.manifest, name, source, plan.quant)
