"""The values a bench passes around (pure; frozen, slotted dataclasses).

A result is keyed by what decides its numbers: the bytes of the loaded files (their sha256),
the machine (`HardwareProfile.fingerprint`), the llama-cpp-python version and the settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from modelsync.errors import UsageError


@dataclass(frozen=True, slots=True)
class Settings:
    """What one measurement does, in llama-bench's terms; `gpu_layers` -1 offloads every layer."""

    n_prompt: int
    n_gen: int
    ctx: int
    gpu_layers: int
    repetitions: int

    def as_dict(self) -> dict[str, int]:
        """The fixed key order of models.bench.json."""
        return {
            "n_prompt": self.n_prompt,
            "n_gen": self.n_gen,
            "ctx": self.ctx,
            "gpu_layers": self.gpu_layers,
            "repetitions": self.repetitions,
        }

    @property
    def pp_test(self) -> str:
        """llama-bench's name of the prompt test: `pp512`."""
        return f"pp{self.n_prompt}"

    @property
    def tg_test(self) -> str:
        """llama-bench's name of the generation test: `tg128`."""
        return f"tg{self.n_gen}"


def settings_for(
    *, n_prompt: int, n_gen: int, ctx: int | None, gpu_layers: int, repetitions: int
) -> Settings:
    """Checked settings; `ctx` None is llama-bench's choice, n_prompt + n_gen (exit 2 naming the
    flag otherwise)."""
    for flag, value in (
        ("--n-prompt", n_prompt),
        ("--n-gen", n_gen),
        ("--repetitions", repetitions),
    ):
        if value < 1:
            raise UsageError(f"{flag} {value}: must be at least 1", hint=f"pass {flag} 1 or more")
    if gpu_layers < -1:
        raise UsageError(
            f"--gpu-layers {gpu_layers}: must be -1 (all) or a layer count",
            hint="pass --gpu-layers -1, 0 or a positive count",
        )
    need = n_prompt + n_gen
    context = need if ctx is None else ctx
    if context < need:
        raise UsageError(
            f"--ctx {context}: smaller than --n-prompt + --n-gen ({need})",
            hint=f"pass --ctx {need} or more, or leave it out",
        )
    return Settings(n_prompt, n_gen, context, gpu_layers, repetitions)


@dataclass(frozen=True, slots=True)
class Stat:
    """Mean and sample standard deviation over the repetitions."""

    mean: float
    std: float


@dataclass(frozen=True, slots=True)
class Runs:
    """What the child measured: seconds per repetition, its peak RSS and the VRAM it used."""

    load_s: tuple[float, ...]
    pp_s: tuple[float, ...]
    tg_s: tuple[float, ...]
    peak_rss: int
    vram: int | None


@dataclass(frozen=True, slots=True)
class Measured:
    """Aggregated figures of one measurement (tokens/s per repetition, then mean ± std)."""

    load_s: Stat
    pp_tps: Stat
    tg_tps: Stat
    peak_rss: int
    vram: int | None


@dataclass(frozen=True, slots=True)
class Key:
    """What decides a result: the loaded files' digests (first shard first), the machine, the
    llama-cpp-python version and the settings."""

    files: tuple[str, ...]
    hardware: str
    llama_cpp: str
    settings: Settings

    @property
    def sha256(self) -> str:
        """The first (or only) file's digest: the result's folder in the store."""
        return self.files[0]

    def as_dict(self) -> dict[str, object]:
        """The key as stored beside the figures."""
        return {
            "files": list(self.files),
            "hardware": self.hardware,
            "llama_cpp": self.llama_cpp,
            "settings": self.settings.as_dict(),
        }

    def digest(self) -> str:
        """Hex sha256 of the canonical key: the result's file name."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Target:
    """One locked GGUF model to measure on this machine."""

    model: str
    profile: str | None
    file: str
    """The first shard's path in the lock."""
    files: tuple[str, ...]
    """The sha256 of every loaded file, first shard first."""
    quant: str | None
    size: int
    """Bytes of the loaded files."""
    path: Path
    """The placed first shard (llama.cpp finds the other shards beside it)."""


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One entry of models.bench.json (BENCH_SCHEMA.md)."""

    model: str
    profile: str | None
    file: str
    sha256: str
    quant: str | None
    size: int
    hardware: str
    llama_cpp: str
    settings: Settings
    measured: Measured

    def sort_key(self) -> tuple[str, str, str, str, str, str]:
        """The file's order: model, profile or "", file, hardware, llama_cpp, settings."""
        settings = json.dumps(self.settings.as_dict(), sort_keys=True)
        return (self.model, self.profile or "", self.file, self.hardware, self.llama_cpp, settings)

    def same_slot(self, other: BenchResult) -> bool:
        """Whether `other` is the result of the same measurement slot (only one is kept)."""
        return self.sort_key() == other.sort_key()


@dataclass(frozen=True, slots=True)
class Change:
    """The change against the previous result of the same model name on another file."""

    previous_sha256: str
    pp_pct: float
    tg_pct: float


@dataclass(frozen=True, slots=True)
class Row:
    """One benched model in the report: its result, whether it was reused, and the change."""

    result: BenchResult
    reused: bool
    change: Change | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    """A model that could not be measured: what happened and the way out."""

    model: str
    file: str
    problem: str
    hint: str
    synced: bool = True
    """False: its files are not (all) in place; `modelsync sync` fixes it."""

    def line(self) -> str:
        """Problem and fix on one line."""
        return f"{self.problem}; {self.hint}"
