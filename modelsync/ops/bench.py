"""`modelsync bench`: measure each locked GGUF model this machine has synced, one child process
per model, and keep the results by (file digests, hardware fingerprint, llama-cpp-python version,
settings) under the store and in models.bench.json beside the lock.

Plan, then apply: the targets (which models, which placed file) come from the same selection
`sync` makes and from a stat-only survey; each is then reused from the store or measured. A model
that fails (not synced, crash, error, timeout) is collected; the others are still measured, and
the worst failure is raised once the report is out (`BenchOutcome.raise_failures`).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from modelsync.bench import report
from modelsync.bench.model import (
    BenchResult,
    Failure,
    Key,
    Measured,
    Row,
    Settings,
    Target,
    settings_for,
)
from modelsync.bench.results import (
    ResultStore,
    bench_path_for,
    read_bench_file,
    write_bench_file,
)
from modelsync.bench.runner import ChildFailedError, measure
from modelsync.errors import StaleError, UsageError
from modelsync.lockfile.model import LockedModel
from modelsync.log import get_logger
from modelsync.ops import project as proj
from modelsync.resolve.gguf import label_of_path, shard_of, skip_reason
from modelsync.store.blobs import BlobStore
from modelsync.store.layout import StoreLayout
from modelsync.store.state import open_state
from modelsync.sync.model import Wanted
from modelsync.sync.verify import verify_inventory

log = get_logger(__name__)

INSTALL_HINT = (
    "install the bench extra: CMAKE_ARGS=\"-DGGML_NATIVE=OFF\" pip install 'modelsync[bench]' "
    "(in a checkout: MODELSYNC_WITH_BENCH=1 scripts/install)"
)
DEFAULT_TIMEOUT = 1800.0


@dataclass(frozen=True, slots=True)
class BenchRequest(proj.ProjectRequest):
    """What to measure, how, and where results go."""

    n_prompt: int = 512
    n_gen: int = 128
    ctx: int | None = None
    gpu_layers: int | None = None
    """None: every layer when this machine has a GPU, else 0."""
    repetitions: int = 3
    force: bool = False
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True, slots=True)
class BenchOutcome:
    """Every benched model (measured or reused), the failures, and the file written."""

    rows: tuple[Row, ...]
    failures: tuple[Failure, ...]
    skipped: tuple[str, ...]
    """Models without a GGUF file (nothing for llama.cpp to load)."""
    settings: Settings
    hardware: str
    llama_cpp: str
    bench_file: Path
    written: bool

    def raise_failures(self) -> None:
        """Raise the worst failure (not synced: 3; could not measure: 2), naming how many more."""
        if not self.failures:
            return
        unsynced = [f for f in self.failures if not f.synced]
        worst = unsynced[0] if unsynced else self.failures[0]
        more = len(self.failures) - 1
        message = f"{worst.problem} (and {more} more models failed)" if more else worst.problem
        if unsynced:
            raise StaleError(message, hint=worst.hint)
        raise UsageError(message, hint=worst.hint)


def llama_cpp_version() -> str | None:
    """The installed llama-cpp-python's version, read without loading its native library."""
    if importlib.util.find_spec("llama_cpp") is None:
        return None
    try:
        return importlib.metadata.version("llama_cpp_python")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def weights_of(model: LockedModel) -> tuple[str, ...]:
    """The model's GGUF weight files (no projector, imatrix or drafter), first shard first."""
    paths = [f.path for f in model.files if skip_reason(f.path) is None]

    def order(path: str) -> tuple[int, str]:
        shard = shard_of(path)
        return (shard[1] if shard else 0, path)

    return tuple(sorted(paths, key=order))


def plan_targets(
    models: Sequence[LockedModel], wanted: Sequence[Wanted], bad: set[str]
) -> tuple[list[Target], list[Failure], list[str]]:
    """Targets for the synced GGUF models; failures for the others; names without a GGUF."""
    by_rel = {w.rel: w for w in wanted}
    targets: list[Target] = []
    failures: list[Failure] = []
    skipped: list[str] = []
    for model in models:
        weights = weights_of(model)
        if not weights:
            skipped.append(model.name)
            continue
        items = [by_rel[f"{model.name}/{path}"] for path in weights]
        missing = [w.rel for w in items if w.rel in bad]
        if missing:
            failures.append(
                Failure(
                    model.name,
                    weights[0],
                    f"models.{model.name}: {', '.join(missing)} is not synced on this machine",
                    "run `modelsync sync` first",
                    synced=False,
                )
            )
            continue
        targets.append(
            Target(
                model=model.name,
                profile=model.profile,
                file=weights[0],
                files=tuple(w.sha256 for w in items),
                quant=model.quant or label_of_path(weights[0]),
                size=sum(w.size for w in items),
                path=items[0].target,
            )
        )
    return targets, failures, skipped


@dataclass(frozen=True, slots=True)
class BenchPlan:
    """What this run will do: the settings, this machine, each model to measure or reuse, and the
    models that cannot be measured or have nothing to load."""

    lock_path: Path
    locked: tuple[LockedModel, ...]
    """Every entry of the lock (for which older results still describe a locked file)."""
    settings: Settings
    hardware: str
    targets: tuple[Target, ...]
    failures: tuple[Failure, ...]
    skipped: tuple[str, ...]


def plan_bench(request: BenchRequest) -> BenchPlan:
    """Read the project, choose the models as `sync` does, and keep those whose placed files
    verify (stat and the stat cache only)."""
    loaded = proj.load(request.manifest, request.environ)
    if loaded.lock is None:
        raise proj.no_lock_error(loaded.lock_path)
    hardware = proj.detect_hardware(request.detector)
    gpu_layers = request.gpu_layers
    settings = settings_for(
        n_prompt=request.n_prompt,
        n_gen=request.n_gen,
        ctx=request.ctx,
        gpu_layers=(-1 if hardware.gpus else 0) if gpu_layers is None else gpu_layers,
        repetitions=request.repetitions,
    )
    ctx = proj.context_for(
        loaded, loaded.lock, dataclasses.replace(request, detector=lambda: hardware)
    )
    layout = StoreLayout(request.store)
    with open_state(layout.state_path) as state:
        inventory, _record = proj.survey(ctx, BlobStore(layout, state), scope=())
    checked = verify_inventory(ctx.wanted, inventory, full=False)
    # llama.cpp reads the placed files: a target that verifies is benchable even where its
    # blob is gone from the store (a placed copy), and a bad blob shows in its linked targets.
    targets_of = {w.rel: w.target for w in ctx.wanted}
    bad = {m.rel for m in checked.mismatches if m.path == targets_of.get(m.rel)}
    targets, failures, skipped = plan_targets(ctx.models, ctx.wanted, bad)
    not_gguf = sorted(set(skipped) & set(request.models))
    if not_gguf:
        raise UsageError(
            f"--model {', '.join(not_gguf)}: no GGUF file in models.lock to load",
            hint="bench measures GGUF models only; leave these names out",
        )
    return BenchPlan(
        lock_path=loaded.lock_path,
        locked=loaded.lock.models,
        settings=settings,
        hardware=hardware.fingerprint(),
        targets=tuple(targets),
        failures=tuple(failures),
        skipped=tuple(skipped),
    )


def bench_project(request: BenchRequest) -> BenchOutcome:
    """Measure (or reuse) every selected model; failures are collected, not raised."""
    version = llama_cpp_version()
    if version is None:
        raise UsageError(
            "`modelsync bench` needs llama-cpp-python, which is not installed", hint=INSTALL_HINT
        )
    plan = plan_bench(request)
    bench_file = bench_path_for(plan.lock_path).absolute()
    previous = read_bench_file(bench_file)
    store = ResultStore(request.store)
    rows: list[Row] = []
    failures = list(plan.failures)
    for target in plan.targets:
        key = Key(target.files, plan.hardware, version, plan.settings)
        done = _bench_one(target, key, store, request)
        if isinstance(done, Failure):
            failures.append(done)
            continue
        measured, reused = done
        result = BenchResult(
            model=target.model,
            profile=target.profile,
            file=target.file,
            sha256=key.sha256,
            quant=target.quant,
            size=target.size,
            hardware=plan.hardware,
            llama_cpp=version,
            settings=plan.settings,
            measured=measured,
        )
        rows.append(Row(result, reused, None if reused else report.change(result, previous)))

    merged = merge(previous, [r.result for r in rows], plan.locked)
    # No empty file where nothing was ever measured (a first run whose models all failed).
    written = bool(merged or previous) and write_bench_file(bench_file, merged)
    return BenchOutcome(
        rows=tuple(rows),
        failures=tuple(failures),
        skipped=plan.skipped,
        settings=plan.settings,
        hardware=plan.hardware,
        llama_cpp=version,
        bench_file=bench_file,
        written=written,
    )


def _bench_one(
    target: Target, key: Key, store: ResultStore, request: BenchRequest
) -> tuple[Measured, bool] | Failure:
    """The stored figures for `key` (reused: True), or a fresh measurement, saved; or why not."""
    bound = log.bind(model=target.model, file=target.file, digest=key.sha256)
    measured = None if request.force else store.load(key)
    if measured is not None:
        bound.info("bench.reused", pp_tps=round(measured.pp_tps.mean, 2))
        return measured, True
    bound.info("bench.start", path=str(target.path), **key.settings.as_dict())
    try:
        runs = measure(target.path, key.settings, timeout=request.timeout)
    except ChildFailedError as exc:
        bound.warning("bench.failed", problem=exc.problem)
        return Failure(target.model, target.file, f"models.{target.model}: {exc.problem}", exc.hint)
    measured = report.aggregate(runs, key.settings)
    store.save(key, measured)
    bound.info(
        "bench.measured",
        pp_tps=round(measured.pp_tps.mean, 2),
        tg_tps=round(measured.tg_tps.mean, 2),
    )
    return measured, False


def merge(
    previous: Sequence[BenchResult], fresh: Sequence[BenchResult], locked: Sequence[LockedModel]
) -> list[BenchResult]:
    """The new file: this run's results, plus earlier ones (any machine, version or settings)
    that still describe a locked file; a result for a file the lock no longer pins goes."""
    current = {
        (m.name, m.profile): (weights[0], m.files) for m in locked if (weights := weights_of(m))
    }

    def still_locked(result: BenchResult) -> bool:
        entry = current.get((result.model, result.profile))
        if entry is None:
            return False
        first, files = entry
        return first == result.file and any(
            f.path == first and f.sha256 == result.sha256 for f in files
        )

    kept = [
        old
        for old in previous
        if still_locked(old) and not any(old.same_slot(new) for new in fresh)
    ]
    return [*kept, *fresh]
