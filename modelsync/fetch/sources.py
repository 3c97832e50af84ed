"""Where else a blob may come from before its registry (pure values)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mirror:
    """A blob remote's URL for one blob (signed: never logged, see log.redact_url)."""

    remote: str
    url: str


MirrorFinder = Callable[[Sequence[str]], Mapping[str, tuple[Mirror, ...]]]
"""Given the digests to download, the remotes' URLs for each, in the order to try them."""


def no_mirrors(_digests: Sequence[str]) -> Mapping[str, tuple[Mirror, ...]]:
    """No blob remote configured: every blob comes from its registry."""
    return {}
