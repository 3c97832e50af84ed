"""`search.rank`: parameter sizes, quantizations, the relevance score and the orders (pure)."""

from __future__ import annotations

import re

import pytest

from modelsync.cli.commands.search import RELEVANCE_HELP
from modelsync.ops.search import RELEVANCE_POOL
from modelsync.registry.listing import RepoSummary
from modelsync.search import rank
from modelsync.search.rank import hit_of, ordered, parse_params, relevance, size_in_name

DAY = 86400
NOW = 1_750_000_000.0


@pytest.mark.parametrize(
    ("name", "count"),
    [
        ("Llama-3.2-1B-Instruct-GGUF", 10**9),
        ("Qwen2.5-0.5B-GGUF", 5 * 10**8),
        ("SmolLM-135M-GGUF", 135 * 10**6),
        ("Phi-3-mini-3.8B-GGUF", 3_800_000_000),
        ("Mixtral-8x7B-v0.1-GGUF", 56 * 10**9),
        ("Qwen3-30B-A3B-GGUF", 30 * 10**9),
        ("Tiny-Q4_K_M.gguf", None),
        ("gemma-3-270m-it-Q8_0.gguf", 270 * 10**6),
    ],
)
def test_size_in_name(name: str, count: int | None) -> None:
    """The size a repo or file name states; quantization labels are not sizes."""
    assert size_in_name(name) == count


def test_params_class_and_range() -> None:
    """`7B` is a class of +/- 20 %; `1B-8B` an inclusive range; anything else is None."""
    seven = parse_params("7b")
    assert seven is not None
    assert 7_600_000_000 in seven
    assert 5_000_000_000 not in seven
    span = parse_params("1B-8B")
    assert span is not None
    assert 10**9 in span
    assert 8 * 10**9 in span
    assert 9 * 10**9 not in span
    assert parse_params("8B-1B") is None
    assert parse_params("seven") is None
    assert parse_params("7") is None


def test_quants_are_the_catalog_labels() -> None:
    """Quantizations come from the resolver's catalog: shards grouped, mmproj left out."""
    summary = RepoSummary(
        "a/b",
        files=(
            "b-Q4_K_M.gguf",
            "b-F16-00001-of-00002.gguf",
            "b-F16-00002-of-00002.gguf",
            "mmproj-b-F16.gguf",
            "README.md",
        ),
    )
    assert rank.quants_of(summary) == ("F16", "Q4_K_M")


def test_relevance_parts_and_determinism() -> None:
    """Each part adds what the docstring says; equal inputs give equal scores; gated costs."""
    zero = RepoSummary("a/x")
    assert relevance(zero, None, NOW) == 0.0
    fresh = RepoSummary("a/x", last_modified=int(NOW))
    assert relevance(fresh, None, NOW) == pytest.approx(0.2)
    half = RepoSummary("a/x", last_modified=int(NOW - 180 * DAY))
    assert relevance(half, None, NOW) == pytest.approx(0.1)
    popular = RepoSummary("a/x", downloads=10**7, likes=10**4)
    assert relevance(popular, None, NOW) == pytest.approx(0.6)
    assert relevance(RepoSummary("a/x-GGUF"), "x", NOW) == pytest.approx(0.2)
    assert relevance(RepoSummary("a/x-y-GGUF"), "x z", NOW) == pytest.approx(0.09)
    gated = RepoSummary("a/x", downloads=10**7, likes=10**4, gated=True)
    assert relevance(gated, None, NOW) == pytest.approx(0.35)
    twin = RepoSummary("a/x", downloads=10**7, likes=10**4)
    assert relevance(popular, "x", NOW) == relevance(twin, "x", NOW)


def test_orders_break_ties_by_repo_id() -> None:
    """Every order is descending on its key, equal keys ascending by repo id."""
    hits = [
        hit_of(RepoSummary("b/two", downloads=5, likes=1), None, NOW),
        hit_of(RepoSummary("a/one", downloads=5, likes=2), None, NOW),
        hit_of(RepoSummary("c/three", downloads=9, likes=0), None, NOW),
    ]
    assert [h.summary.repo for h in ordered(hits, "downloads")] == ["c/three", "a/one", "b/two"]
    assert [h.summary.repo for h in ordered(hits, "likes")] == ["a/one", "b/two", "c/three"]


def test_help_states_the_weights_the_code_uses() -> None:
    """`search --help` spells out the relevance formula: its numbers are rank's constants."""
    numbers = re.findall(r"^[+ ] (\d\.\d+) \*", RELEVANCE_HELP, re.MULTILINE)
    assert [float(n) for n in numbers] == list(rank.WEIGHTS.values())
    assert f"- {rank.GATED_PENALTY} if gated" in RELEVANCE_HELP
    assert f"/ {rank.HALF_LIFE_DAYS:g})" in RELEVANCE_HELP
    assert f"first {RELEVANCE_POOL} matches" in RELEVANCE_HELP
    assert f"+/- {rank.PARAM_TOLERANCE:.0%}".replace("%", " %") in RELEVANCE_HELP
