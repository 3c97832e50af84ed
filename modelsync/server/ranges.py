"""HTTP `Range` headers (RFC 9110 section 14) for one file: pure parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelsync.server.hub_errors import RangeNotSatisfiableError

_SINGLE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_PAST_ANY_FILE = 10**18
"""What a position of more than 18 digits stands for: `int()` of thousands of digits raises."""


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else _PAST_ANY_FILE


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive byte span of a file of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        """Bytes in the span."""
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        """The `Content-Range` value of a 206 answer."""
        return f"bytes {self.start}-{self.end}/{self.size}"


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The span to send for a `Range` header, `None` for the whole file.

    Headers that do not parse, use another unit or ask for several spans are ignored (a 200 with
    the whole file is always a valid answer). A span that starts at or past the end, or an empty
    suffix, raises `RangeNotSatisfiableError` (416).
    """
    if header is None:
        return None
    match = _SINGLE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiableError(size)
        return ByteRange(max(size - suffix, 0), size - 1, size)
    start = _position(first)
    end = _position(last) if last else None
    if end is not None and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiableError(size)
    return ByteRange(start, size - 1 if end is None else min(end, size - 1), size)
