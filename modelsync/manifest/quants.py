"""The quantization names a manifest may use (`quant = "Q4_K_M"`), and suggestions for typos.

This is the manifest's vocabulary only; ranking and file-name parsing live in `resolve`, which
keeps its own table (a unit test checks that both agree).
"""

from __future__ import annotations

import difflib

BASE_LABELS: tuple[str, ...] = (
    "F32", "BF16", "F16",
    "Q8_0", "Q8_K_XL",
    "Q6_K_XL", "Q6_K_L", "Q6_K",
    "Q5_K_XL", "Q5_K_L", "Q5_K_M", "Q5_K_S", "Q5_1", "Q5_0",
    "Q4_K_XL", "Q4_K_L", "Q4_K_M", "Q4_K_S", "IQ4_NL", "IQ4_XS",
    "MXFP4_MOE", "MXFP4", "NVFP4", "Q4_1", "Q4_0",
    "Q3_K_XL", "Q3_K_L", "Q3_K_M", "IQ3_M", "IQ3_S", "IQ3_XS", "IQ3_XXS", "Q3_K_S",
    "Q2_K_XL", "Q2_K_L", "IQ2_M", "Q2_K", "Q2_K_S", "IQ2_S", "IQ2_XS", "IQ2_XXS",
    "IQ1_M", "IQ1_S", "TQ2_0", "TQ1_0", "Q2_0", "Q1_0",
)  # fmt: skip
"""Labels as llama.cpp, bartowski and unsloth name files (upper case)."""

PREFIXES = ("UD-", "i1-")
"""Unsloth Dynamic mixes and mradermacher's imatrix files."""

_BASES = frozenset(BASE_LABELS)


def canonical_label(text: str) -> str | None:
    """The canonical spelling of a quantization label (`q4_k_m` → `Q4_K_M`), or None if unknown."""
    upper = text.strip().upper()
    prefix = ""
    for candidate in PREFIXES:
        if upper.startswith(candidate.upper()):
            prefix, upper = candidate, upper[len(candidate) :]
            break
    return f"{prefix}{upper}" if upper in _BASES else None


def _squash(text: str) -> str:
    return text.upper().replace("_", "").replace("-", "").replace(" ", "")


def suggest_label(text: str) -> str | None:
    """The known label closest to a misspelling (`Q4KM` → `Q4_K_M`), or None."""
    squashed = _squash(text)
    prefix = ""
    for candidate in PREFIXES:
        if squashed.startswith(_squash(candidate)):
            prefix, squashed = candidate, squashed[len(_squash(candidate)) :]
            break
    by_squash = {_squash(label): label for label in BASE_LABELS}
    if squashed in by_squash:
        return prefix + by_squash[squashed]
    close = difflib.get_close_matches(squashed, list(by_squash), n=1, cutoff=0.6)
    return prefix + by_squash[close[0]] if close else None
