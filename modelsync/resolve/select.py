"""Choose the files of one model for one machine, with the reason and the `--explain` rows.

`quant = "best"`: among candidates at or above the quality floor and up to Q8_0 (full precision
only when the repo has nothing else, or with `best-full`), the best tier (full GPU > partial
offload ≥ 50 % > CPU), then the best quality (`quants.RANKS`), then imatrix/dynamic mixes at
≤ 4 bits, then the smaller file, a single file, the path. A named quantization is taken exactly
or fails with the list of what exists; an ordered list takes the first that exists and fits.
`include` globs next to a quantization add files (a vision projector). Non-GGUF repositories
take `include`/`exclude` globs, or every file.

On a detected machine (no profiles declared) reasons state what the choice needs, not what the
machine has: the lock is kept as it is on every other machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from fnmatch import fnmatchcase

from modelsync.errors import NoVariantFitsError, UsageError
from modelsync.hardware.model import HardwareProfile
from modelsync.resolve.gguf import catalog, pinned_file
from modelsync.resolve.memory import budgets, context_for, estimate, fit
from modelsync.resolve.model import (
    TIER_ORDER,
    Catalog,
    Choice,
    Estimate,
    Fit,
    ModelShape,
    RepoFile,
    Row,
    RowStatus,
    Variant,
    Want,
    describe,
    gib,
)
from modelsync.resolve.quants import (
    BEST_CAP,
    DEFAULT_FLOOR,
    full_precision,
    low_bit,
    nearest_by_bits,
    rank,
)

_IGNORED = frozenset({".gitattributes"})


def select(
    want: Want,
    files: Sequence[RepoFile],
    shape: ModelShape | None,
    machine: HardwareProfile,
    found: Catalog | None = None,
) -> Choice:
    """The files `want` resolves to on `machine`; UsageError / NoVariantFitsError (exit 2).

    `found` is `catalog(files)` where the caller has it already (one per listing, not one per
    machine)."""
    if want.mode == "globs":
        return _globs(want, files, machine)
    choice = _gguf(want, files, shape, machine, found)
    return _with_extras(want, files, choice) if want.extras else choice


def header_file(want: Want, files: Sequence[RepoFile], found: Catalog) -> str | None:
    """The file whose GGUF header gives the model's shape: the pinned or named one, else the
    smallest candidate (the shape is shared by every quantization of a repository)."""
    if want.mode == "globs":
        return None
    if want.mode == "file" and want.file is not None:
        variant = pinned_file(files, want.file)
        return variant.first if variant is not None and variant.kind == "model" else None
    named = [v for v in found.variants if want.labels and v.label == want.labels[0]]
    smallest = sorted(found.variants, key=lambda v: (v.size, v.first))
    pick = named or smallest
    return pick[0].first if pick else None


def _gguf(
    want: Want,
    files: Sequence[RepoFile],
    shape: ModelShape | None,
    machine: HardwareProfile,
    found: Catalog | None,
) -> Choice:
    if want.mode == "file":
        assert want.file is not None
        variant = pinned_file(files, want.file)
        if variant is None:
            raise UsageError(
                f'{want.subject}: "{want.file}" is not a file of {want.source}',
                hint=f"files there: {_some_paths(files)}",
            )
        return _take(want, variant, shape, machine, "pinned by the source")
    found = found if found is not None else catalog(files)
    if not found:
        if want.mode in ("named", "ordered") or want.extras:
            raise UsageError(
                f"{want.subject}: {want.source} has no GGUF model files, so quant cannot choose",
                hint="remove quant and select files with include = [...] globs",
            )
        return _all(want, files, machine)
    if want.mode == "named":
        return _named(want, found.variants, shape, machine)
    if want.mode == "ordered":
        return _ordered(want, found.variants, shape, machine)
    return _best(want, found.variants, shape, machine)


# ---- GGUF candidates ---------------------------------------------------------------------


def _label_of(variant: Variant, shape: ModelShape | None) -> str | None:
    """The file's label, else the one nearest its bits per weight (when the shape is known)."""
    if variant.label is not None:
        return variant.label
    if shape is not None and shape.parameter_count:
        return nearest_by_bits(8 * max(variant.size - shape.header_size, 0) / shape.parameter_count)
    return None


def _rank_of(variant: Variant, shape: ModelShape | None) -> float | None:
    label = _label_of(variant, shape)
    return rank(label) if label is not None else None


def _full(variant: Variant, shape: ModelShape | None) -> bool:
    label = _label_of(variant, shape)
    return label is not None and full_precision(label)


def _measure(
    variant: Variant, shape: ModelShape | None, machine: HardwareProfile, context: int
) -> tuple[Estimate | None, Fit | None]:
    if shape is None or variant.kind != "model":
        return None, None
    est = estimate(shape, variant.size, context)
    return est, fit(shape, est, machine)


def _order_key(row: Row) -> tuple[int, float, int, int, int, str]:
    """Sort key, best first: tier, quality, imatrix at low bits, size, single file, path."""
    tier = TIER_ORDER[row.fit.tier] if row.fit else 0
    label = row.variant.label or ""
    imatrix = int(row.variant.imatrix and low_bit(label.removeprefix("UD-").removeprefix("i1-")))
    return (
        -tier,
        -(row.rank if row.rank is not None else -1.0),
        -imatrix,
        row.variant.size,
        len(row.variant.files),
        row.variant.first,
    )


def _rows(
    want: Want,
    *,
    variants: Sequence[Variant],
    shape: ModelShape | None,
    machine: HardwareProfile,
    context: int,
    requested: set[str] | None,
) -> list[Row]:
    floor = rank(want.floor or DEFAULT_FLOOR) or 0.0
    # Full precision only when asked for, or when the repo has nothing else to offer.
    capped = want.mode == "best" and not all(_full(v, shape) for v in variants)
    rows = []
    for variant in variants:
        est, where = _measure(variant, shape, machine, context)
        value = _rank_of(variant, shape)
        status: RowStatus
        if requested is not None and variant.label not in requested:
            status = "not requested"
        elif requested is None and value is not None and value < floor:
            status = "below floor"
        elif requested is None and capped and _full(variant, shape):
            status = "full precision"
        elif where is None:
            status = "unknown size"
        else:
            status = "too big" if where.tier == "none" else "fits"
        rows.append(Row(variant, est, where, status, value))
    return rows


def _choose(rows: list[Row], chosen: Row) -> tuple[Row, ...]:
    return tuple(
        Row(r.variant, r.estimate, r.fit, "chosen", r.rank) if r is chosen else r for r in rows
    )


def _fit_text(row: Row, machine: HardwareProfile | None = None) -> str:
    """How a candidate fits; for a detected `machine` only what it needs (kept everywhere)."""
    if row.fit is None:
        return "no size estimate"
    assert row.estimate is not None
    if machine is not None and machine.detected:
        return f"needs est. {gib(row.estimate.total)}, ctx {row.estimate.context}"
    if row.fit.tier == "none":
        return f"does not fit: needs {row.fit.need_text().removeprefix('est. ')}"
    return f"{row.fit.describe()}, {row.fit.need_text()}, ctx {row.estimate.context}"


def _choice(
    want: Want, machine: HardwareProfile, chosen: Row, rows: list[Row], reason: str, *notes: str
) -> Choice:
    return Choice(
        profile=machine.name,
        files=chosen.variant.files,
        quant=chosen.variant.label,
        reason=reason,
        rows=_choose(rows, chosen),
        context=chosen.estimate.context if chosen.estimate else None,
        memory=chosen.estimate.total if chosen.estimate else None,
        fit=chosen.fit,
        notes=notes,
    )


def _best(
    want: Want, variants: Sequence[Variant], shape: ModelShape | None, machine: HardwareProfile
) -> Choice:
    context = context_for(shape, want.context)
    rows = _rows(
        want, variants=variants, shape=shape, machine=machine, context=context, requested=None
    )
    eligible = sorted((r for r in rows if r.status in ("fits", "unknown size")), key=_order_key)
    if not eligible:
        raise _nothing_fits(want, rows, machine, context)
    chosen = eligible[0]
    what = f"up to {BEST_CAP} that fits the machine it was chosen on" if machine.detected else ""
    reason = (
        f"{chosen.variant.display}: the best quality {what or 'that fits'} "
        f"({_fit_text(chosen, machine)})"
    )
    better = [
        r
        for r in rows
        if r is not chosen
        and r.status in ("fits", "too big")
        and (r.rank or 0.0) > (chosen.rank or 0.0)
    ]
    if better:
        nearest = min(better, key=lambda r: (r.rank or 0.0, r.variant.size))
        assert nearest.fit is not None
        assert nearest.estimate is not None
        if machine.detected:
            where = "did not fit" if nearest.fit.tier == "none" else nearest.fit.describe()
            why = f"(est. {gib(nearest.estimate.total)}): {where}"
        elif nearest.fit.tier == "none":
            why = f"needs {nearest.fit.need_text().removeprefix('est. ')}"
        else:
            why = f"only {nearest.fit.describe()}"
        reason += f"; {nearest.variant.display} {why}"
    return _choice(want, machine, chosen, rows, reason)


def _matching(want: Want, variants: Sequence[Variant], label: str) -> list[Variant]:
    matches = [v for v in variants if v.label == label]
    if len(matches) > 1:
        paths = ", ".join(v.first for v in matches)
        raise UsageError(
            f'{want.subject}: {want.source} has {len(matches)} "{label}" candidates: {paths}',
            hint='pin one with source = "org/repo:<path>"',
        )
    return matches


def _missing(want: Want, variants: Sequence[Variant], wanted: str) -> UsageError:
    available = ", ".join(v.display for v in variants)
    return UsageError(
        f"{want.subject}: quantization {wanted} is not in {want.source}; it has: {available}",
        hint='set quant to one of these, or to "best"',
    )


def _named(
    want: Want, variants: Sequence[Variant], shape: ModelShape | None, machine: HardwareProfile
) -> Choice:
    label = want.labels[0]
    matches = _matching(want, variants, label)
    if not matches:
        raise _missing(want, variants, f'"{label}"')
    context = context_for(shape, want.context)
    rows = _rows(
        want, variants=variants, shape=shape, machine=machine, context=context, requested={label}
    )
    chosen = next(r for r in rows if r.variant is matches[0])
    notes: tuple[str, ...] = ()
    if chosen.fit is not None and chosen.fit.tier == "none":
        notes = (f"{label} does not fit profile {machine.name}: {_fit_text(chosen)}",)
    reason = f"{label}: named in the manifest ({_fit_text(chosen, machine)})"
    return _choice(want, machine, chosen, rows, reason, *notes)


def _ordered(
    want: Want, variants: Sequence[Variant], shape: ModelShape | None, machine: HardwareProfile
) -> Choice:
    context = context_for(shape, want.context)
    rows = _rows(
        want,
        variants=variants,
        shape=shape,
        machine=machine,
        context=context,
        requested=set(want.labels),
    )
    skipped = []
    for label in want.labels:
        matches = _matching(want, variants, label)
        if not matches:
            skipped.append(f"{label} not in the repo")
            continue
        row = next(r for r in rows if r.variant is matches[0])
        if row.fit is not None and row.fit.tier == "none":
            skipped.append(f"{label} {_fit_text(row)}")
            continue
        reason = (
            f"{label}: first of [{', '.join(want.labels)}] that fits ({_fit_text(row, machine)})"
        )
        if skipped:
            reason += "; " + "; ".join(skipped)
        return _choice(want, machine, row, rows, reason)
    if not any(_matching(want, variants, label) for label in want.labels):
        raise _missing(want, variants, "[" + ", ".join(want.labels) + "]")
    raise _nothing_fits(want, [r for r in rows if r.status != "not requested"], machine, context)


def _nothing_fits(
    want: Want, rows: Sequence[Row], machine: HardwareProfile, context: int
) -> NoVariantFitsError:
    measured = [r for r in rows if r.estimate is not None and r.status != "below floor"]
    pool = measured or [r for r in rows if r.estimate is not None]
    smallest = min(pool, key=lambda r: r.estimate.total if r.estimate else 0)
    assert smallest.estimate is not None
    limits = budgets(machine)
    usable = f"{gib(limits.ram)} RAM"
    if limits.gpu:
        usable = f"{gib(limits.gpu)} {limits.resource}, " + usable
    hint = f"declare a bigger profile, lower context (now {context}), or name a smaller quant"
    rescue = sorted(
        (r for r in rows if r.status == "below floor" and r.fit and r.fit.tier != "none"),
        key=lambda r: -(r.rank or 0.0),
    )
    if rescue:
        label = rescue[0].variant.display
        hint = f'{label} is below the quality floor but fits: set quality-floor = "{label}"'
    return NoVariantFitsError(
        f"{want.subject}: nothing in {want.source} fits profile {machine.name} "
        f"({describe(machine)}): the smallest, {smallest.variant.display}, needs est. "
        f"{gib(smallest.estimate.total)} at ctx {context}; usable: {usable}",
        hint=hint,
    )


def _take(
    want: Want, variant: Variant, shape: ModelShape | None, machine: HardwareProfile, why: str
) -> Choice:
    context = context_for(shape, want.context)
    est, where = _measure(variant, shape, machine, context)
    row = Row(variant, est, where, "chosen", _rank_of(variant, shape))
    notes: tuple[str, ...] = ()
    if where is not None and where.tier == "none":
        notes = (f"{variant.first} does not fit profile {machine.name}: {_fit_text(row)}",)
    reason = f"{variant.first}: {why} ({_fit_text(row, machine)})"
    return Choice(
        profile=machine.name,
        files=variant.files,
        quant=variant.label,
        reason=reason,
        rows=(row,),
        context=context if est else None,
        memory=est.total if est else None,
        fit=where,
        notes=notes,
    )


def _with_extras(want: Want, files: Sequence[RepoFile], choice: Choice) -> Choice:
    """The choice plus the files `include` globs match next to it (mmproj for vision)."""
    chosen = {f.path for f in choice.files}
    extra = tuple(
        f
        for f in sorted(files, key=lambda f: f.path)
        if f.path not in chosen and any(fnmatchcase(f.path, p) for p in want.extras)
    )
    if not extra:
        raise UsageError(
            f"{want.subject}: include {list(want.extras)} matched no other file of {want.source}",
            hint=f"files there: {_some_paths(files)}",
        )
    paths = ", ".join(f.path for f in extra)
    return replace(
        choice,
        files=tuple(sorted((*choice.files, *extra), key=lambda f: f.path)),
        reason=f"{choice.reason}; with {paths} (include)",
    )


# ---- non-GGUF repositories ---------------------------------------------------------------


def _globs(want: Want, files: Sequence[RepoFile], machine: HardwareProfile) -> Choice:
    include = want.include or ("*",)
    chosen = tuple(
        f
        for f in sorted(files, key=lambda f: f.path)
        if f.path not in _IGNORED
        and any(fnmatchcase(f.path, p) for p in include)
        and not any(fnmatchcase(f.path, p) for p in want.exclude)
    )
    if not chosen:
        raise UsageError(
            f"{want.subject}: include {list(include)} exclude {list(want.exclude)} "
            f"matched no file of {want.source}",
            hint=f"files there: {_some_paths(files)}",
        )
    reason = f"{len(chosen)} files matched include {list(include)}"
    if want.exclude:
        reason += f" exclude {list(want.exclude)}"
    return Choice(profile=machine.name, files=chosen, quant=None, reason=reason)


def _all(want: Want, files: Sequence[RepoFile], machine: HardwareProfile) -> Choice:
    chosen = tuple(sorted((f for f in files if f.path not in _IGNORED), key=lambda f: f.path))
    if not chosen:
        raise UsageError(f"{want.subject}: {want.source} has no files", hint="check the source")
    reason = f"all {len(chosen)} files (no GGUF model files; set include globs to choose)"
    return Choice(profile=machine.name, files=chosen, quant=None, reason=reason)


def _some_paths(files: Sequence[RepoFile], limit: int = 8) -> str:
    paths = sorted(f.path for f in files if f.path not in _IGNORED)
    shown = ", ".join(paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "") or "none"
