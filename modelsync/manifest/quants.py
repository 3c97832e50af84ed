"""The quantization names a manifest may use (`quant = "Q4_K_M"`), and suggestions for typos.

The labels are those of the one table in `modelsync.rules`, which `resolve` ranks.
"""

from __future__ import annotations

import difflib

from modelsync.rules import QUANT_LABELS, QUANT_PREFIXES

BASE_LABELS: tuple[str, ...] = tuple(sorted(QUANT_LABELS))
"""Labels as llama.cpp, bartowski and unsloth name files (upper case)."""

PREFIXES = QUANT_PREFIXES
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
