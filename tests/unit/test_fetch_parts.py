"""Planning parallel pieces and reading a parts journal: pure values."""

from __future__ import annotations

from pathlib import Path

from modelsync.fetch.parts import MAX_PART_FACTOR, PART_MIN, plan_pieces, worth_parts
from modelsync.store.layout import StoreLayout
from modelsync.store.partial import Spans, claim_partial, parse_journal, resumable

MIB = 1 << 20


def test_a_file_under_two_parts_takes_one_stream() -> None:
    """Small files, and one connection, never split."""
    assert not worth_parts(31 * MIB, connections=8, part_size=16 * MIB)
    assert not worth_parts(1 << 40, connections=1, part_size=16 * MIB)
    assert worth_parts(32 * MIB, connections=8, part_size=16 * MIB)


def test_pieces_cover_the_holes_in_order_without_overlap() -> None:
    """256 MiB over 8 connections is 8 pieces of 32 MiB; holes are covered exactly, in order."""
    pieces = plan_pieces([(0, 256 * MIB)], connections=8, part_size=16 * MIB)
    assert pieces == [(i * 32 * MIB, (i + 1) * 32 * MIB) for i in range(8)]
    holes = [(5, 40 * MIB), (50 * MIB, 51 * MIB)]
    pieces = plan_pieces(holes, connections=8, part_size=4 * MIB)
    covered = [b for a, c in pieces for b in (a, c)]
    assert covered == sorted(covered)
    assert sum(c - a for a, c in pieces) == sum(c - a for a, c in holes)
    assert pieces[0][0] == 5
    assert pieces[-1][1] == 51 * MIB


def test_pieces_of_a_huge_file_stay_bounded() -> None:
    """A 40 GiB file is split into rounds, no piece above MAX_PART_FACTOR parts (64 MiB)."""
    pieces = plan_pieces([(0, 40 << 30)], connections=8, part_size=PART_MIN)
    assert max(c - a for a, c in pieces) <= MAX_PART_FACTOR * PART_MIN == 64 * MIB
    assert len(pieces) % 8 == 0


def test_spans_merge_and_report_prefix_and_holes() -> None:
    """Touching spans merge; the prefix is the gap-free start; holes are the rest."""
    spans = Spans([(10, 20), (0, 5)])
    assert spans.prefix() == 5
    spans.add(5, 10)
    assert list(spans) == [(0, 20)]
    spans.add(30, 40)
    assert spans.holes(50) == [(20, 30), (40, 50)]
    assert spans.total() == 30


def test_a_torn_or_foreign_journal_line_is_skipped() -> None:
    """Only whole `start end` lines of ASCII digits count, cut to the file's size."""
    text = "0 100\n200 300\nabc def\n٣ 5\n400 10000\n500 5"
    assert list(parse_journal(text, 1000)) == [(0, 100), (200, 300), (400, 1000)]


def test_a_journaled_partial_resumes_with_its_spans(tmp_path: Path) -> None:
    """Out-of-order writes survive a new claim (compacted past the line limit) and count as
    held bytes for the plan."""
    layout = StoreLayout(tmp_path / "store")
    sha = "cd" * 32
    partial = claim_partial(layout, sha)
    partial.start_parts(10_000)
    for offset in range(9_000, 1_000, -1):  # 8000 lines: past the compaction threshold
        partial.write_at(memoryview(b"x"), offset)
    partial.write_at(memoryview(b"y"), 0)
    partial.close()
    assert resumable(layout, sha, 10_000) == 8001
    again = claim_partial(layout, sha)
    try:
        assert again.spans is not None
        assert list(again.spans) == [(0, 1), (1_001, 9_001)]
        assert again.held == 8001
        assert again.size == 1  # gap-free prefix
    finally:
        again.close()
