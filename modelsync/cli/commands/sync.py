"""`modelsync sync`: make the targets match the lock through the blob store."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command, add_model_filter
from modelsync.cli.options import GlobalOptions, positive
from modelsync.cli.render import Output
from modelsync.units import human_bytes

if TYPE_CHECKING:
    from modelsync.ops.sync import (
        Applied,
        FetchStep,
        ProgressFactory,
        ProgressSink,
        SyncPlan,
        SyncReport,
    )

LINK_MODES = ("auto", "reflink", "hardlink", "symlink", "copy")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--frozen", action="store_true", help="use the lock as is, never re-resolve"
    )
    parser.add_argument(
        "--locked", action="store_true", help="exit 3 if the lock is stale versus the manifest"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the plan (files, bytes to fetch) only"
    )
    add_model_filter(parser)
    parser.add_argument("--profile", metavar="NAME", help="which of the lock's profiles to sync")
    parser.add_argument("--jobs", type=int, default=4, metavar="N", help="parallel downloads")
    parser.add_argument(
        "--connections",
        type=positive,
        default=None,
        metavar="N",
        help="connections per large file, each fetching a byte range (default: 8, or one "
        "stream where the first 4 MiB arrive within 0.06 s; 1: one stream)",
    )
    parser.add_argument("--link", choices=LINK_MODES, help="force a link mode (default: auto)")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="hash every byte like `verify --full`, then re-fetch or re-link what is wrong "
        "(replacing changed files)",
    )
    parser.add_argument(
        "--strict-fit",
        action="store_true",
        help="exit 2 when a locked choice needs more memory than this machine has (for CI)",
    )


def progress_factory(opts: GlobalOptions) -> ProgressFactory:
    """Bars on a TTY, events with --json, lines every 10 s in a plain log (chosen once bytes
    are known)."""

    @contextlib.contextmanager
    def factory(total: int) -> Iterator[ProgressSink]:
        from modelsync.cli.progress import choose_progress  # noqa: PLC0415 - when bytes move

        sink = choose_progress(
            json=opts.json,
            enabled=opts.progress and opts.verbosity >= 0,
            stream=sys.stderr,
            environ=os.environ,
            total_bytes=total,
        )
        if isinstance(sink, contextlib.AbstractContextManager):  # bars: drawn while entered
            with sink:
                yield sink
        else:
            yield sink

    return factory


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.sync import LinkMode, SyncRequest, run_sync  # noqa: PLC0415

    request = SyncRequest(
        manifest=opts.manifest,
        store=opts.store,
        frozen=args.frozen,
        locked=args.locked,
        dry_run=args.dry_run,
        models=tuple(args.model),
        profile=args.profile,
        jobs=args.jobs,
        connections=args.connections,
        link=None if args.link in (None, "auto") else LinkMode(args.link),
        repair=args.repair,
        strict_fit=args.strict_fit,
        offline=opts.offline,
        wait=opts.wait,
        wait_timeout=opts.wait_timeout,
        environ=dict(os.environ),
        progress=progress_factory(opts),
    )
    report = run_sync(request)
    render(report, out)
    return 0


def _fetch_line(step: FetchStep) -> str:
    if not step.resume_from:
        return f"  fetch   {step.label} ({human_bytes(step.size)})"
    rest = human_bytes(step.size - step.resume_from)
    held = human_bytes(step.resume_from)
    return f"  fetch   {step.label} ({rest} of {human_bytes(step.size)}; {held} in a partial)"


def plan_lines(plan: SyncPlan) -> list[str]:
    """One line per thing the plan would do (shared with `status`)."""
    lines = [_fetch_line(s) for s in plan.downloads]
    lines += [
        f"  adopt   {s.label} ({human_bytes(s.size)}) from {s.adopt[0].source}: {s.adopt[0].path}"
        for s in plan.adoptions
    ]
    lines += [
        f"  bad     {b.path}: {b.found} (moved to quarantine, then fetched again)"
        for b in plan.bad_blobs
    ]
    lines += [f"  place   {p.rel} ({p.reason.value})" for p in plan.place]
    lines += [f"  remove  {r.rel} (no longer in the lock)" for r in plan.remove]
    lines += [f"  record  {r.rel} ({r.note})" for r in plan.record]
    lines += [
        f"  conflict {c.rel}: "
        f"{'changed since modelsync placed it' if c.modified else 'not placed by modelsync'} "
        f"(expected {c.size} bytes, sha256 {c.sha256}; found {c.found})"
        for c in plan.conflicts
    ]
    return lines


def plan_summary(plan: SyncPlan) -> str:
    """`2 files to fetch (1.2 GiB), 1 to adopt (3.0 GiB), 3 to place, 1 to remove, 4 unchanged`
    (no `to adopt` part when there is nothing to adopt)."""
    parts = [f"{len(plan.downloads)} files to fetch ({human_bytes(plan.bytes_to_fetch)})"]
    if plan.adoptions:
        parts.append(f"{len(plan.adoptions)} to adopt ({human_bytes(plan.bytes_to_adopt)})")
    parts += [f"{len(plan.place)} to place", f"{len(plan.remove)} to remove"]
    if plan.conflicts:
        parts.append(f"{len(plan.conflicts)} conflicts")
    parts.append(f"{plan.unchanged} unchanged")
    return ", ".join(parts)


def plan_json(plan: SyncPlan) -> dict[str, object]:
    """The plan as JSON fields (shared with `status`)."""
    return {
        "bytes_to_fetch": plan.bytes_to_fetch,
        "bytes_resumed": plan.bytes_resumed,
        "bytes_to_adopt": plan.bytes_to_adopt,
        "link_mode": plan.link_mode.value if plan.link_mode else None,
        "fetch": [
            {"file": s.label, "sha256": s.sha256, "size": s.size, "resume_from": s.resume_from}
            for s in plan.downloads
        ],
        "adopt": [
            {
                "file": s.label,
                "sha256": s.sha256,
                "size": s.size,
                "from": s.adopt[0].source,
                "path": str(s.adopt[0].path),
            }
            for s in plan.adoptions
        ],
        "place": [{"file": p.rel, "reason": p.reason.value} for p in plan.place],
        "remove": [r.rel for r in plan.remove],
        "conflicts": [
            {"file": c.rel, "path": str(c.target), "modified": c.modified, "found": c.found}
            for c in plan.conflicts
        ],
        "bad_blobs": [{"sha256": b.sha256, "found": b.found} for b in plan.bad_blobs],
        "unchanged": plan.unchanged,
    }


def applied_lines(applied: Applied) -> list[str]:
    """The files the summary names, not only counts: adopted, resumed, removed."""
    lines = [f"  adopted {label} (from {source})" for label, source in applied.adopted]
    lines += [f"  from remote {remote}: {label}" for label, remote in applied.from_remotes]
    lines += [
        f"  resumed {label} ({human_bytes(reused)} from an earlier run)"
        for label, reused in applied.resumed
    ]
    lines += [f"  removed {rel}" for rel in applied.removed]
    return lines


def render(report: SyncReport, out: Output) -> None:
    """Human lines, or one JSON report."""
    said = f"profile {report.profile.name or '-'}: {report.profile.why}"
    n_models = len(report.models)
    applied = report.applied
    if report.relocked:
        out.line(f"re-locked {report.lock_path} first (it was stale)")
    if report.dry_run:
        if report.stale:
            out.line(f"note: {report.lock_path} is stale ({report.stale}); sync would re-lock")
        for line in plan_lines(report.plan):
            out.line(line)
        out.line(f"would sync {n_models} models, {said}: {plan_summary(report.plan)}")
    elif applied is None:
        mode = f"; {report.link_mode}" if report.link_mode else ""
        out.line(
            f"nothing to do: {n_models} models, {report.files} files up to date "
            f"in {report.target_root} ({said}{mode})"
        )
    else:
        rate = (
            f" in {applied.fetch_seconds:.1f} s"
            if applied.fetched and applied.fetch_seconds
            else ""
        )
        remotes = f"; {len(applied.from_remotes)} from remotes" if applied.from_remotes else ""
        out.line(
            f"synced {n_models} models ({said}): {applied.fetched} files fetched "
            f"({human_bytes(applied.bytes_fetched)}{rate}{remotes}), "
            f"{len(applied.adopted)} adopted, "
            f"{applied.placed} placed ({report.link_mode or 'no placement'}), "
            f"{len(applied.removed)} removed, {report.plan.unchanged} unchanged"
        )
        for line in applied_lines(applied):
            out.line(line)
    out.report(
        "sync",
        lock=str(report.lock_path),
        target=str(report.target_root),
        profile=report.profile.name,
        profile_reason=report.profile.why,
        models=list(report.models),
        files=report.files,
        dry_run=report.dry_run,
        relocked=report.relocked,
        stale=report.stale,
        misfits=list(report.misfits),
        link_mode=report.link_mode,
        plan=plan_json(report.plan),
        fetched=applied.fetched if applied else 0,
        bytes_fetched=applied.bytes_fetched if applied else 0,
        adopted=[{"file": f, "from": s} for f, s in applied.adopted] if applied else [],
        bytes_adopted=applied.bytes_adopted if applied else 0,
        from_remotes=[{"file": f, "remote": r} for f, r in applied.from_remotes] if applied else [],
        resumed=[{"file": f, "bytes": n} for f, n in applied.resumed] if applied else [],
        placed=applied.placed if applied else 0,
        removed=list(applied.removed) if applied else [],
        unchanged=report.plan.unchanged,
        seconds=round(report.seconds, 3),
    )


COMMAND = Command("sync", "make this machine match models.lock", add_arguments, run)
