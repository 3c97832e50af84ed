"""Values passed into and out of the resolver.

`resolve` is independent of `manifest` and `registry` (import-linter keeps these siblings
apart), so it declares the few fields it needs; `lock.steps` maps the richer values onto these.
Machines are `hardware.model.HardwareProfile`s (`hardware` sits below `resolve`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from modelsync.hardware.model import HardwareProfile

GIB = 1 << 30
MIB = 1 << 20


def gib(n_bytes: int | float) -> str:
    """`6.4 GiB` (or MiB below 1 GiB), for reasons and tables."""
    if abs(n_bytes) < GIB:
        return f"{n_bytes / MIB:.0f} MiB"
    return f"{n_bytes / GIB:.1f} GiB"


def describe(machine: HardwareProfile) -> str:
    """`24.0 GiB VRAM, 64.0 GiB RAM`, for messages."""
    parts = []
    if machine.gpus and not machine.unified:
        count = f"{len(machine.gpus)} GPUs, " if len(machine.gpus) > 1 else ""
        parts.append(f"{count}{gib(machine.vram_total)} VRAM")
    parts.append(f"{gib(machine.ram_total)} {'unified memory' if machine.unified else 'RAM'}")
    return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class RepoFile:
    """A file of a repository at a commit: path and size."""

    path: str
    size: int


@dataclass(frozen=True, slots=True)
class Variant:
    """One loadable choice: a quantization label and its files (all shards of a split model)."""

    label: str | None
    """`Q4_K_M`, `UD-Q4_K_XL`, `i1-Q4_K_M`; None when the name carries none."""
    files: tuple[RepoFile, ...]
    kind: Literal["model", "file"] = "model"
    """`file` for a non-model file pinned by name (an mmproj, say)."""

    @property
    def size(self) -> int:
        """Bytes of all its files."""
        return sum(f.size for f in self.files)

    @property
    def first(self) -> str:
        """The path of its first file (shard 1), which holds the GGUF metadata."""
        return self.files[0].path

    @property
    def imatrix(self) -> bool:
        """Quantized with an importance matrix or as a dynamic mix (helps at ≤ 4 bits)."""
        return self.label is not None and self.label.startswith(("i1-", "UD-"))

    @property
    def display(self) -> str:
        """The label, or the file name when there is none."""
        return self.label or self.first.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Skipped:
    """A file that is not a candidate, and why (mmproj, imatrix, drafter, repack, incomplete)."""

    path: str
    reason: str


@dataclass(frozen=True, slots=True)
class Catalog:
    """The candidates of a repository listing, and what was set aside."""

    variants: tuple[Variant, ...]
    skipped: tuple[Skipped, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.variants)

    def labels(self) -> list[str]:
        """Every variant's display label, sorted by quality (best first)."""
        return [v.display for v in self.variants]


@dataclass(frozen=True, slots=True)
class ModelShape:
    """What the memory estimate needs from a GGUF header (shared by all quants of a repo)."""

    architecture: str | None
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int | tuple[int, ...]
    """KV heads, per layer where the file gives an array (0 = no KV cache in that layer)."""
    key_length: int | None = None
    value_length: int | None = None
    context_length: int | None = None
    n_vocab: int = 32000
    sliding_window: int | None = None
    swa_pattern: int | None = None
    """Every n-th layer is global attention, the others sliding-window (Gemma 3: 6)."""
    header_size: int = 0
    parameter_count: int | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """Bytes one variant needs at a context length."""

    weights: int
    kv_cache: int
    compute: int
    host: int
    """Host-side extras: tokenizer, runtime, KQ mask."""
    context: int

    @property
    def total(self) -> int:
        """Everything, wherever it lives."""
        return self.weights + self.kv_cache + self.compute + self.host

    @property
    def device(self) -> int:
        """What a full GPU offload puts on the GPU."""
        return self.weights + self.kv_cache + self.compute


Tier = Literal["full", "partial", "cpu", "none"]
TIER_ORDER: dict[str, int] = {"full": 3, "partial": 2, "cpu": 1, "none": 0}


@dataclass(frozen=True, slots=True)
class Fit:
    """Where a variant runs on a machine, and the need versus the budget that decided it."""

    tier: Tier
    gpu_layers: int
    n_layers: int
    need: int
    """Bytes on the deciding resource (GPU for full/partial, RAM for cpu/none)."""
    budget: int
    resource: str
    """`VRAM`, `RAM` or `unified memory`."""

    def describe(self) -> str:
        """`full GPU`, `partial offload 20/32 layers`, `CPU`, `mostly CPU (4/32 layers on GPU)`."""
        if self.tier == "full":
            return "full GPU"
        if self.tier == "partial":
            return f"partial offload {self.gpu_layers}/{self.n_layers} layers"
        if self.tier == "cpu":
            if self.gpu_layers:
                return f"mostly CPU ({self.gpu_layers}/{self.n_layers} layers on GPU)"
            return "CPU"
        return "does not fit"

    def need_text(self) -> str:
        """`est. 6.4 of 22.2 GiB VRAM`."""
        return f"est. {gib(self.need)} of {gib(self.budget)} {self.resource}"


RowStatus = Literal[
    "chosen", "fits", "too big", "below floor", "full precision", "not requested", "unknown size"
]


@dataclass(frozen=True, slots=True)
class Row:
    """One line of `lock --explain`: a candidate, its estimate and fit, and its fate."""

    variant: Variant
    estimate: Estimate | None
    fit: Fit | None
    status: RowStatus
    rank: float | None


@dataclass(frozen=True, slots=True)
class Want:
    """What the manifest asks of one model, in the resolver's terms."""

    subject: str
    """`models.gemma`, for messages."""
    source: str
    """`hf:org/repo@abc1234`, for messages."""
    mode: Literal["best", "best-full", "named", "ordered", "file", "globs", "all"] = "best"
    """`best` goes up to Q8_0; `best-full` also takes F16/BF16/F32."""
    labels: tuple[str, ...] = ()
    file: str | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    """Globs of files locked next to the chosen GGUF (a vision projector, say)."""
    context: int | None = None
    floor: str | None = None


@dataclass(frozen=True, slots=True)
class Choice:
    """The resolver's answer for one model on one machine."""

    profile: str
    files: tuple[RepoFile, ...]
    quant: str | None
    reason: str
    rows: tuple[Row, ...] = ()
    context: int | None = None
    memory: int | None = None
    """Estimated bytes in total (weights + KV + compute + host)."""
    fit: Fit | None = None
    notes: tuple[str, ...] = field(default=())
    """Warnings worth a log event (a named quant that does not fit, say)."""

    def same_files(self, other: Choice) -> bool:
        """Whether two profiles chose the very same files."""
        return (self.quant, self.files) == (other.quant, other.files)
