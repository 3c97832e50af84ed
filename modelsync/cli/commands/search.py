"""`modelsync search`: find GGUF repositories on a registry, list one's files, add one."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from modelsync.cli.commands.base import Command
from modelsync.cli.options import GlobalOptions
from modelsync.cli.render import Output
from modelsync.units import human_bytes

if TYPE_CHECKING:
    from modelsync.ops.search import Added, FilesReport, SearchReport

SORT_KEYS = ("downloads", "likes", "updated", "created", "relevance")
MAX_QUANTS_SHOWN = 6

# The weights are search.rank's (WEIGHTS, GATED_PENALTY, HALF_LIFE_DAYS); a test keeps them
# equal. They are spelled out here because building the parser must not import the ranking.
RELEVANCE_HELP = """\
--sort relevance ranks the first 200 matches (by downloads) by a score:
  0.40 * min(1, log10(1 + downloads) / 7)   10 M downloads count fully
+ 0.20 * min(1, log10(1 + likes) / 4)       10 k likes count fully
+ 0.20 * 0.5 ** (days since updated / 180)  recency, a half-life of 180 days
+ 0.20 * name match                         1 for the repo's own name (-GGUF aside), else
                                            0.9 * the share of query words in the repo id
- 0.25 if gated
Equal inputs give equal scores; ties go to the repo id. Gated repos are left out unless
--gated, and marked when shown.

--params takes a size class (7B: 7 B +/- 20 %) or a range (1B-8B), from the repo's GGUF
metadata or else its name. --files REPO lists its GGUF files and marks with -> the one
`modelsync lock` would pick on this machine. --add NAME appends [models.NAME] (source, and
quant when --quant is given) to models.toml for the first result (or the --files repo).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = RELEVANCE_HELP
    parser.add_argument("text", nargs="?", help="words to look for in repository ids")
    parser.add_argument("--registry", default="hf", metavar="NAME", help="registry to search")
    parser.add_argument("--author", metavar="NAME", help="only this user or organisation")
    parser.add_argument("--quant", metavar="QUANT", help="only repos offering this quantization")
    parser.add_argument("--params", metavar="SIZE", help="parameter size: 7B, or a range 1B-8B")
    parser.add_argument(
        "--sort", choices=SORT_KEYS, default="downloads", help="order (default: downloads)"
    )
    parser.add_argument(
        "--limit", type=int, default=20, metavar="N", help="results to show, 1-100 (default 20)"
    )
    parser.add_argument(
        "--gated",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="include gated repos, marked (default: --no-gated, left out)",
    )
    parser.add_argument("--files", metavar="REPO", help="list REPO's GGUF files and lock's pick")
    parser.add_argument("--add", metavar="NAME", help="add the first result to models.toml")


def run(args: argparse.Namespace, opts: GlobalOptions, out: Output) -> int:
    from modelsync.ops.search import (  # noqa: PLC0415 - see base.LAZY_OPS
        FilesReport,
        SearchRequest,
        search,
    )

    request = SearchRequest(
        text=args.text,
        registry=args.registry,
        author=args.author,
        quant=args.quant,
        params=args.params,
        gated=args.gated,
        sort=args.sort,
        limit=args.limit,
        files=args.files,
        add=args.add,
        manifest_flag=opts.manifest_flag,
        offline=opts.offline,
        environ=dict(os.environ),
    )
    import asyncio  # noqa: PLC0415 - see base.LAZY_OPS

    report = asyncio.run(search(request))
    if isinstance(report, FilesReport):
        render_files(report, out)
    else:
        render_hits(report, out)
    return 0


def _date(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d") if seconds else "-"


def _params(count: int | None) -> str:
    if count is None:
        return "-"
    if count >= 10**9:
        return f"{count / 10**9:.3g}B"
    return f"{count / 10**6:.3g}M"


def _quants(labels: tuple[str, ...]) -> str:
    shown = ", ".join(labels[:MAX_QUANTS_SHOWN])
    more = len(labels) - MAX_QUANTS_SHOWN
    return f"{shown} +{more}" if more > 0 else shown or "-"


def _table(rows: list[tuple[str, ...]], right: frozenset[int]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]


def render_hits(report: SearchReport, out: Output) -> None:
    """One line per repository, best first; `(gated)` after a gated one."""
    relevance = report.sort == "relevance"
    head = ("repo", "downloads", "likes", "updated", "created", "params", "quants")
    rows: list[tuple[str, ...]] = [(*head, "score") if relevance else head]
    for hit in report.hits:
        summary = hit.summary
        cells = (
            summary.repo + (" (gated)" if summary.gated else ""),
            str(summary.downloads),
            str(summary.likes),
            _date(summary.last_modified),
            _date(summary.created_at),
            _params(hit.parameters),
            _quants(hit.quants),
        )
        rows.append((*cells, f"{hit.score:.3f}") if relevance else cells)
    if report.hits:
        for line in _table(rows, frozenset({1, 2, 7})):
            out.line(line)
    else:
        out.line(f"no GGUF repositories on {report.registry} match")
    _added_line(report.added, out)
    out.report(
        "search",
        registry=report.registry,
        sort=report.sort,
        results=[
            {
                "repo": h.summary.repo,
                "downloads": h.summary.downloads,
                "likes": h.summary.likes,
                "updated": _date(h.summary.last_modified),
                "created": _date(h.summary.created_at),
                "gated": h.summary.gated,
                "parameters": h.parameters,
                "quants": list(h.quants),
                "score": h.score,
            }
            for h in report.hits
        ],
        requests=report.requests,
        added=_added_json(report.added),
    )


def render_files(report: FilesReport, out: Output) -> None:
    """The repository's GGUF variants, best quality first, `->` on lock's pick."""
    gated = " (gated)" if report.gated else ""
    where = f"{report.registry}:{report.repo}@{report.commit[:7]}{gated}"
    out.line(f"{where} on this machine: {report.machine}")
    rows: list[tuple[str, ...]] = [("", "quant", "params", "size", "shards", "file")]
    rows.extend(
        (
            "->" if row.picked else "",
            row.quant,
            _params(row.parameters),
            human_bytes(row.size),
            str(row.shards),
            row.path,
        )
        for row in report.rows
    )
    if report.rows:
        for line in _table(rows, frozenset({3, 4})):
            out.line("  " + line)
    else:
        out.line("  no GGUF files")
    picked = any(r.picked for r in report.rows)
    out.line(f"lock would pick {report.reason}" if picked else f"lock picks none: {report.reason}")
    _added_line(report.added, out)
    out.report(
        "search",
        registry=report.registry,
        repo=report.repo,
        commit=report.commit,
        gated=report.gated,
        files=[
            {
                "quant": r.quant,
                "path": r.path,
                "shards": r.shards,
                "size": r.size,
                "parameters": r.parameters,
                "picked": r.picked,
            }
            for r in report.rows
        ],
        reason=report.reason,
        requests=report.requests,
        added=_added_json(report.added),
    )


def _added_line(added: Added | None, out: Output) -> None:
    if added is not None:
        quant = f', quant "{added.quant}"' if added.quant else ""
        out.line(f'added [models.{added.name}] source "{added.source}"{quant} to {added.manifest}')


def _added_json(added: Added | None) -> dict[str, object] | None:
    if added is None:
        return None
    return {
        "manifest": str(added.manifest),
        "name": added.name,
        "source": added.source,
        "quant": added.quant,
    }


COMMAND = Command("search", "find GGUF repos on a registry", add_arguments, run)
