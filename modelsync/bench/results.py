"""Where results live: one file per key under `<store>/bench/`, and models.bench.json beside the
lock (BENCH_SCHEMA.md: sorted, fixed key order, deterministic apart from the measured values).

Rendering and parsing are pure; the two readers and writers at the end do the I/O, every write
atomic (modelsync.atomic).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelsync import atomic
from modelsync.bench.model import BenchResult, Key, Measured, Settings, Stat
from modelsync.errors import UsageError

BENCH_FILENAME = "models.bench.json"
BENCH_VERSION = 1
_DIGITS = 4


def bench_path_for(lock_path: Path) -> Path:
    """models.bench.json beside models.lock."""
    return lock_path.with_name(BENCH_FILENAME)


def _stat(value: Stat) -> dict[str, float]:
    return {"mean": round(value.mean, _DIGITS), "std": round(value.std, _DIGITS)}


def measured_dict(measured: Measured) -> dict[str, Any]:
    """The figures in the schema's key order."""
    return {
        "load_s": _stat(measured.load_s),
        "pp_tps": _stat(measured.pp_tps),
        "tg_tps": _stat(measured.tg_tps),
        "peak_rss": measured.peak_rss,
        "vram": measured.vram,
    }


def result_dict(result: BenchResult) -> dict[str, Any]:
    """One models.bench.json entry in the schema's key order."""
    return {
        "model": result.model,
        "profile": result.profile,
        "file": result.file,
        "sha256": result.sha256,
        "quant": result.quant,
        "size": result.size,
        "hardware": result.hardware,
        "llama_cpp": result.llama_cpp,
        "settings": result.settings.as_dict(),
        **measured_dict(result.measured),
    }


def render_bench_file(results: Iterable[BenchResult]) -> str:
    """models.bench.json text: results sorted by the schema's key, one slot each."""
    ordered = sorted(results, key=BenchResult.sort_key)
    payload = {"version": BENCH_VERSION, "results": [result_dict(r) for r in ordered]}
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"


def _stat_of(value: Any) -> Stat:
    return Stat(float(value["mean"]), float(value["std"]))


def measured_of(entry: Mapping[str, Any]) -> Measured:
    """Figures from a stored entry (KeyError/TypeError/ValueError when malformed)."""
    vram = entry.get("vram")
    return Measured(
        load_s=_stat_of(entry["load_s"]),
        pp_tps=_stat_of(entry["pp_tps"]),
        tg_tps=_stat_of(entry["tg_tps"]),
        peak_rss=int(entry["peak_rss"]),
        vram=None if vram is None else int(vram),
    )


def _settings_of(value: Mapping[str, Any]) -> Settings:
    return Settings(
        n_prompt=int(value["n_prompt"]),
        n_gen=int(value["n_gen"]),
        ctx=int(value["ctx"]),
        gpu_layers=int(value["gpu_layers"]),
        repetitions=int(value["repetitions"]),
    )


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _json_object(text: str, path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"{path}: not valid JSON ({exc})",
            hint="restore it from git, or delete it: `modelsync bench` writes it again",
        ) from exc
    if not isinstance(payload, dict):
        raise UsageError(
            f"{path}: not a models.bench.json (expected a JSON object)",
            hint="restore it from git, or delete it: `modelsync bench` writes it again",
        )
    return payload


def parse_bench_file(text: str, path: Path) -> tuple[BenchResult, ...]:
    """The entries of a models.bench.json; unknown keys are ignored (a newer writer's), a
    malformed file is exit 2 naming it."""
    payload = _json_object(text, path)
    version = payload.get("version")
    if version != BENCH_VERSION:
        raise UsageError(
            f"{path}: version {version!r}; this modelsync reads version {BENCH_VERSION}",
            hint="upgrade modelsync, or delete the file to measure again",
        )
    try:
        return tuple(
            BenchResult(
                model=str(entry["model"]),
                profile=_optional_str(entry.get("profile")),
                file=str(entry["file"]),
                sha256=str(entry["sha256"]),
                quant=_optional_str(entry.get("quant")),
                size=int(entry["size"]),
                hardware=str(entry["hardware"]),
                llama_cpp=str(entry["llama_cpp"]),
                settings=_settings_of(entry["settings"]),
                measured=measured_of(entry),
            )
            for entry in payload["results"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(
            f"{path}: not a models.bench.json ({type(exc).__name__}: {exc})",
            hint="restore it from git, or delete it: `modelsync bench` writes it again",
        ) from exc


def read_bench_file(path: Path) -> tuple[BenchResult, ...]:
    """The results in `path`; none if it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ()
    return parse_bench_file(text, path)


def write_bench_file(path: Path, results: Sequence[BenchResult]) -> bool:
    """Write `results` atomically unless the file already holds exactly that; True if written."""
    text = render_bench_file(results)
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (FileNotFoundError, UnicodeDecodeError):
        pass
    atomic.write_text(path, text)
    return True


class ResultStore:
    """`<store>/bench/<sha256>/<key digest>.json`: one measurement per key, any project's."""

    def __init__(self, store: Path) -> None:
        self.root = store / "bench"

    def path(self, key: Key) -> Path:
        """Where the result for `key` lives."""
        return self.root / key.sha256 / f"{key.digest()}.json"

    def load(self, key: Key) -> Measured | None:
        """The stored figures for `key`; None if absent or unreadable (then measured again)."""
        try:
            entry = json.loads(self.path(key).read_text(encoding="utf-8"))
            if entry.get("key") != key.as_dict():
                return None
            return measured_of(entry)
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    def save(self, key: Key, measured: Measured) -> Path:
        """Store the figures for `key` atomically; returns the file."""
        path = self.path(key)
        entry = {"version": BENCH_VERSION, "key": key.as_dict(), **measured_dict(measured)}
        atomic.write_text(path, json.dumps(entry, indent=2) + "\n")
        return path
