"""`lock --explain` and `hw --model`: the candidates table of one model on one machine (pure)."""

from __future__ import annotations

from modelsync.hardware.model import HardwareProfile
from modelsync.resolve.memory import budgets
from modelsync.resolve.model import Choice, Row, describe, gib
from modelsync.resolve.quants import BEST_CAP

_COLUMNS = ("", "candidate", "files", "size", "est. memory", "needs", "runs as", "verdict")


def _cells(row: Row) -> tuple[str, ...]:
    mark = "→" if row.status == "chosen" else ""
    estimate = gib(row.estimate.total) if row.estimate else "-"
    needs = runs = "-"
    if row.fit is not None:
        needs = row.fit.need_text().removeprefix("est. ")
        runs = row.fit.describe()
    return (
        mark,
        row.variant.display,
        str(len(row.variant.files)),
        gib(row.variant.size),
        estimate,
        needs,
        runs,
        row.status,
    )


def explain_lines(name: str, source: str, machine: HardwareProfile, choice: Choice) -> list[str]:
    """A heading, the table (best quality first), and the reason of the choice."""
    limits = budgets(machine)
    usable = f"{gib(limits.ram)} RAM"
    if limits.gpu:
        usable = f"{gib(limits.gpu)} {limits.resource}, {usable}"
    context = f", ctx {choice.context}" if choice.context else ""
    heading = f"{name} ({source}) on profile {machine.name}: {describe(machine)}"
    lines = [f"{heading} (usable {usable}){context}"]
    rows = [_COLUMNS, *(_cells(r) for r in choice.rows)]
    if len(rows) == 1:
        lines.append(f"  {len(choice.files)} files, no candidates to compare")
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
        for row in rows:
            text = "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))
            lines.append(("  " + text).rstrip())
    skipped = [r.variant.display for r in choice.rows if r.status == "full precision"]
    if skipped:
        lines.append(
            f"  skipped {', '.join(skipped)}: full precision costs twice {BEST_CAP} for no "
            'measurable quality in GGUF inference; name it, or set quant = "best-full"'
        )
    lines.append(f"  reason: {choice.reason}")
    return lines
