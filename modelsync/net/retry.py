"""Retry policy as values: which answers are worth retrying and how long to wait (pure)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# The Hub's rate-limit header: `"api";r=0;t=55` → retry in t seconds.
# ASCII digits only: `\d` and str.isdigit() also take "²", which float() refuses.
_RATELIMIT_T = re.compile(r"(?:^|;)\s*t=([0-9]+)")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in each wait."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25  # fraction of the delay added at random, so a fleet does not stampede
    stall_window: float = 30.0
    """Seconds over which an attempt must move `min_speed` bytes per second, or it is retried."""
    min_speed: int = 1024
    """Bytes per second: a server that drips less (1 byte every 5 s never trips a read
    timeout) counts as stalled."""

    def stalled(self, moved: int) -> bool:
        """Whether `moved` bytes in one `stall_window` are too few."""
        return moved < self.min_speed * self.stall_window

    def delay(self, attempt: int, *, retry_after: float | None, rand: float) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based).

        A server's Retry-After wins when it is longer than the backoff; `rand` in [0, 1) is
        passed in so the policy stays pure and testable.
        """
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        backoff += backoff * self.jitter * rand
        if retry_after is not None:
            return max(backoff, min(retry_after, self.max_delay * 4))
        return backoff


def retry_after_seconds(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """The wait a server asked for: `RateLimit: ...;t=N`, `Retry-After: N` or an HTTP date."""
    ratelimit = headers.get("RateLimit")
    if ratelimit:
        match = _RATELIMIT_T.search(ratelimit)
        if match:
            return float(match.group(1))
    value = headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    # email.utils loads the email package: worth it only here, not for every no-op sync.
    from email.utils import parsedate_to_datetime  # noqa: PLC0415

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - current).total_seconds())
