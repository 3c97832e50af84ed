"""Pure bench logic: figures from the child's seconds, the change against an older file, and the
terminal table in llama-bench's terms."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

from modelsync.bench.model import BenchResult, Change, Measured, Row, Runs, Settings, Stat
from modelsync.resolve.model import gib


def stat(values: Sequence[float]) -> Stat:
    """Mean and sample standard deviation (llama-bench's), 0 for a single value."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Stat(statistics.fmean(values), std)


def aggregate(runs: Runs, settings: Settings) -> Measured:
    """Tokens/s per repetition (tokens over that repetition's seconds), then mean ± std."""
    return Measured(
        load_s=stat(runs.load_s),
        pp_tps=stat([settings.n_prompt / max(s, 1e-9) for s in runs.pp_s]),
        tg_tps=stat([settings.n_gen / max(s, 1e-9) for s in runs.tg_s]),
        peak_rss=runs.peak_rss,
        vram=runs.vram,
    )


def _pct(new: float, old: float) -> float:
    return (new - old) / old * 100 if old else 0.0


def change(result: BenchResult, previous: Iterable[BenchResult]) -> Change | None:
    """The change against the previous result of the same model name and profile measured on
    another file with the same hardware and settings (None when there is none)."""
    for old in previous:
        if (
            old.model == result.model
            and old.profile == result.profile
            and old.sha256 != result.sha256
            and old.hardware == result.hardware
            and old.settings == result.settings
        ):
            new_m, old_m = result.measured, old.measured
            return Change(
                previous_sha256=old.sha256,
                pp_pct=_pct(new_m.pp_tps.mean, old_m.pp_tps.mean),
                tg_pct=_pct(new_m.tg_tps.mean, old_m.tg_tps.mean),
            )
    return None


def _tps(value: Stat) -> str:
    return f"{value.mean:.2f} ± {value.std:.2f}"


def _signed(pct: float) -> str:
    return f"{pct:+.1f} %"


def table(rows: Sequence[Row]) -> list[str]:
    """A markdown table like llama-bench's: two rows (pp, tg) per model."""
    header = [
        "model",
        "quant",
        "size",
        "test",
        "t/s",
        "load s",
        "peak RSS",
        "vs previous",
        "result",
    ]
    right = {2, 4, 5, 6, 7}
    body: list[list[str]] = []
    for row in rows:
        r = row.result
        m = r.measured
        note = "reused" if row.reused else "measured"
        for test, value, pct in (
            (r.settings.pp_test, m.pp_tps, row.change.pp_pct if row.change else None),
            (r.settings.tg_test, m.tg_tps, row.change.tg_pct if row.change else None),
        ):
            body.append(
                [
                    r.model,
                    r.quant or "-",
                    gib(r.size),
                    test,
                    _tps(value),
                    f"{m.load_s.mean:.2f}",
                    gib(m.peak_rss),
                    "-" if pct is None else _signed(pct),
                    note,
                ]
            )
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        padded = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return [render(header), render(rule), *(render(line) for line in body)]
