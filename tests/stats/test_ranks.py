"""Tests of rank bands and the shared display order in app.stats.ranks."""

from __future__ import annotations

import math
import random

import pytest

from app.stats.ranks import display_order, rank_bands


def test_rank_bands_separated_intervals() -> None:
    assert rank_bands([0.5, 0.3, 0.1], [0.7, 0.45, 0.2]) == [1, 2, 3]


def test_rank_bands_overlap_shares_rank() -> None:
    # The first two overlap, so neither is clearly better, and the third is below both.
    assert rank_bands([0.5, 0.48, 0.1], [0.7, 0.6, 0.2]) == [1, 1, 3]


def test_rank_bands_touching_bounds_tie() -> None:
    # A lower bound equal to another entry's upper bound is not strictly above it.
    assert rank_bands([0.4, 0.2], [0.6, 0.4]) == [1, 1]


def test_rank_bands_undefined_interval() -> None:
    lows = [0.5, None, 0.1, 0.9, math.nan]
    highs = [0.7, 0.8, 0.2, None, 0.95]

    assert rank_bands(lows, highs) == [1, None, 2, None, None]


def test_rank_bands_ranks_in_input_order() -> None:
    assert rank_bands([0.1, 0.5, 0.3], [0.2, 0.7, 0.45]) == [3, 1, 2]


def test_rank_bands_empty() -> None:
    assert rank_bands([], []) == []


def test_rank_bands_length_mismatch() -> None:
    with pytest.raises(ValueError, match="2 lower bounds but 1 upper bounds"):
        rank_bands([0.1, 0.2], [0.3])


def test_display_order_by_value_then_name() -> None:
    keys = [
        (0.4, "Janus-Pro", "direct"),
        (None, "Alpha", "direct"),
        (0.7, "bagel", "stepwise"),
        (0.7, "BAGEL", "direct"),
        (math.nan, "Aardvark", "direct"),
        (0.7, "Anole", "direct"),
    ]

    assert display_order(keys) == [5, 3, 2, 0, 4, 1]


def test_display_order_ties_stable_across_calls() -> None:
    """30 entries with the same value come out in one order, whatever the input order."""
    names = [f"Model-{chr(ord('a') + k % 15)}{'' if k < 15 else 'X'}" for k in range(30)]
    keys = [(0.5, name, protocol) for name in names[:15] for protocol in ("stepwise", "direct")]
    expected = sorted(
        ((name, protocol) for _, name, protocol in keys),
        key=lambda key: (key[0].casefold(), key[1]),
    )

    assert len(keys) == 30
    for seed in range(10):
        shuffled = keys[:]
        random.Random(seed).shuffle(shuffled)
        order = display_order(shuffled)
        assert [shuffled[i][1:] for i in order] == expected
        assert display_order(shuffled) == order


def test_display_order_case_only_difference() -> None:
    forward = [(0.5, "bagel", "direct"), (0.5, "BAGEL", "direct")]
    backward = forward[::-1]

    assert [forward[i] for i in display_order(forward)] == [
        backward[i] for i in display_order(backward)
    ]


def test_display_order_empty() -> None:
    assert display_order([]) == []
