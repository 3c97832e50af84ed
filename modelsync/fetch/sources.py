"""Where else a blob may come from before its registry (pure values)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mirror:
    """A blob remote's way to one blob: `sign()` gives a signed GET URL (never logged, see
    log.redact_url), made when the download starts: a file started hours into a sync must not
    meet a URL that expired meanwhile."""

    remote: str
    sign: Callable[[], str]


MirrorFinder = Callable[[Sequence[str]], Mapping[str, tuple[Mirror, ...]]]
"""Given the digests to download, the remotes' signers for each, in the order to try them."""


def no_mirrors(_digests: Sequence[str]) -> Mapping[str, tuple[Mirror, ...]]:
    """No blob remote configured: every blob comes from its registry."""
    return {}
