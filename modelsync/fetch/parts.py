"""Which byte ranges of a large file go over which connection: pure planning.

Links that cap each connection (CDNs do) reach their speed only with several streams, so a file
of at least two parts is fetched as pieces over up to `connections` connections. Pieces are
dealt in file order, so the gap-free prefix that the hashing thread follows grows all along and
the SHA-256 is ready soon after the last byte (what is left to hash at the end is at most the
last round of pieces). A piece is at most MAX_PART_FACTOR parts long, which bounds that rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelsync.fetch.body import BodySink

PART_MIN = 4 << 20
"""The smallest piece worth its own connection (one request's latency against its bytes): at
16 MB/s and 40 ms to the first byte, 4 MiB take 0.26 s, so a 64 MiB file gets all 8 connections
(0.68 s instead of 1.23 s with 16 MiB parts, which gave it 4; benchmarks/wan.py)."""
MAX_PART_FACTOR = 16
"""Pieces are at most this many `part_size`s (64 MiB by default), so a 40 GB file is not 8
pieces of 5 GB each (the hash would then follow piece 0 only and have 35 GB to read at the
end), nor 10,000 pieces each paying a request's latency."""


@dataclass(slots=True)
class Piece:
    """Bytes [start, end) of the file, fetched by one connection at a time; `pos` is where the
    next byte goes (a retry asks for [pos, end): a piece restarts from its own bytes)."""

    start: int
    end: int
    pos: int = field(init=False)
    sink: BodySink | None = None
    """The body being received into it, if any (for the stall check)."""

    def __post_init__(self) -> None:
        self.pos = self.start

    def moved(self) -> int:
        """Where the piece stands, counting bytes received but not yet written."""
        return self.pos + (self.sink.pending if self.sink is not None else 0)


def worth_parts(size: int, *, connections: int, part_size: int) -> bool:
    """Whether a file of `size` bytes is fetched in parallel parts (else one stream)."""
    return connections > 1 and size >= 2 * part_size


def plan_pieces(
    holes: list[tuple[int, int]], *, connections: int, part_size: int
) -> list[tuple[int, int]]:
    """Split the missing spans into pieces, in file order, for up to `connections` connections:
    enough equal rounds that no piece is longer than MAX_PART_FACTOR × `part_size`."""
    total = sum(end - start for start, end in holes)
    if total <= 0:
        return []
    workers = max(1, min(connections, total // max(1, part_size)))
    longest = workers * part_size * MAX_PART_FACTOR
    rounds = max(1, -(-total // longest))
    piece = max(1, -(-total // (workers * rounds)))
    pieces = []
    for start, end in holes:
        count = max(1, -(-(end - start) // piece))
        step = -(-(end - start) // count)
        pieces += [(at, min(at + step, end)) for at in range(start, end, step)]
    return pieces
