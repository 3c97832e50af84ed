"""Quantization labels: quality ranking, whole-file bits per weight, the quality floor.

The labels and their ranks are `modelsync.rules`' table (shared with the manifest); the figures
here are from notes/hardware-and-quants.md sections 2–4 (llama.cpp's quantize README).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from modelsync.rules import QUANT_LABELS, QUANT_PREFIXES, QUANT_RANKS

RANKS = QUANT_RANKS
"""Label → rank (higher is better)."""

BASE_LABELS = QUANT_LABELS
"""Labels without a prefix, as they appear in file names."""

ARM_REPACKS: frozenset[str] = frozenset(
    {"Q4_0_4_4", "Q4_0_4_8", "Q4_0_8_8", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8"}
)
"""Formats llama.cpp no longer loads (PR #10446): recognised so they can be excluded."""

FULL_PRECISION: frozenset[str] = frozenset({"F32", "F16", "BF16"})
"""Unquantized labels: for GGUF inference twice the bytes of Q8_0 for no measurable quality
(KLD 0.0005 vs 0.0014, notes section 3), so `best` takes them only when nothing else exists."""

BEST_CAP = "Q8_0"
"""The best `quant = "best"` takes; `best-full` (or naming one) lifts it to full precision."""

DEFAULT_FLOOR = "Q3_K_S"
"""Nothing ranked below this unless named or the floor is lowered (KLD > ~0.2 below it)."""

# Whole-file bits per weight of Llama-3.1-8B (llama.cpp tools/quantize/README.md).
WHOLE_FILE_BPW: Mapping[str, float] = MappingProxyType(
    {
        "F32": 32.0,
        "F16": 16.0005,
        "Q8_0": 8.5008,
        "Q6_K": 6.5633,
        "Q5_K_M": 5.7036,
        "Q5_K_S": 5.5704,
        "Q4_K_M": 4.8944,
        "IQ4_NL": 4.6818,
        "Q4_K_S": 4.6672,
        "IQ4_XS": 4.4597,
        "Q3_K_L": 4.2979,
        "Q3_K_M": 3.9960,
        "IQ3_M": 3.7628,
        "IQ3_S": 3.6606,
        "Q3_K_S": 3.6429,
        "IQ3_XS": 3.4977,
        "IQ3_XXS": 3.2548,
        "Q2_K": 3.1593,
        "Q2_K_S": 2.9697,
        "IQ2_M": 2.9294,
        "IQ2_S": 2.7403,
        "IQ2_XS": 2.5882,
        "IQ2_XXS": 2.3824,
        "IQ1_M": 2.1460,
        "IQ1_S": 2.0042,
    }
)


def base_of(label: str) -> str:
    """The label without its `UD-` or `i1-` prefix."""
    for prefix in QUANT_PREFIXES:
        if label.startswith(prefix):
            return label[len(prefix) :]
    return label


def rank(label: str) -> float | None:
    """Quality rank of a label; a custom mix (`UD-`) ranks just above its base; None if unknown."""
    label = label.removeprefix("i1-")
    if label in RANKS:
        return RANKS[label]
    base = base_of(label)
    if base in RANKS:
        return RANKS[base] + (0.5 if label.startswith("UD-") else 0.0)
    return None


def full_precision(label: str) -> bool:
    """F32, F16 or BF16."""
    return base_of(label) in FULL_PRECISION


def bits(label: str) -> float | None:
    """Nominal bits per weight (whole file), or None if the table has no figure."""
    return WHOLE_FILE_BPW.get(base_of(label))


def low_bit(label: str) -> bool:
    """4 bits or fewer, where an imatrix or a dynamic mix measurably helps."""
    figure = bits(label)
    return figure is not None and figure < 5.0


def nearest_by_bits(bpw: float) -> str:
    """The label whose whole-file bits per weight is closest (for files named without one)."""
    return min(WHOLE_FILE_BPW, key=lambda label: abs(WHOLE_FILE_BPW[label] - bpw))
