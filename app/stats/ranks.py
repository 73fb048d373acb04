"""Rank bands from intervals, and the one display order shared by pages, exports and the API."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence


def rank_bands(lows: Sequence[float | None], highs: Sequence[float | None]) -> list[int | None]:
    """Rank entries by how many others are clearly better.

    Entry ``i`` gets rank ``1 + `` the number of entries ``j`` whose lower bound is strictly
    above ``i``'s upper bound. Entries whose intervals overlap are statistical ties and may
    share a rank. An entry with an undefined bound gets None and is never counted as better
    than another.

    Raises:
        ValueError: ``lows`` and ``highs`` differ in length.
    """
    if len(lows) != len(highs):
        raise ValueError(f"got {len(lows)} lower bounds but {len(highs)} upper bounds")
    intervals = [_defined_interval(low, high) for low, high in zip(lows, highs, strict=True)]
    defined_lows = sorted(interval[0] for interval in intervals if interval is not None)
    ranks: list[int | None] = []
    for interval in intervals:
        if interval is None:
            ranks.append(None)
            continue
        better = len(defined_lows) - bisect.bisect_right(defined_lows, interval[1])
        ranks.append(1 + better)
    return ranks


def display_order(keys: Sequence[tuple[float | None, str, str]]) -> list[int]:
    """Return the indices of ``keys`` in display order.

    Each key is ``(value, model name, protocol)``. Entries sort by value descending, with
    undefined values (None or NaN) last, then by casefolded model name, then by protocol. Exact
    spelling and then input position break any remaining tie, so equal keys keep a stable
    order and the result does not depend on the input order unless two keys are identical.
    """

    def sort_key(index: int) -> tuple[bool, float, str, str, str, str, int]:
        value, model, protocol = keys[index]
        undefined = value is None or math.isnan(value)
        descending = 0.0 if value is None or undefined else -value
        return (
            undefined,
            descending,
            model.casefold(),
            protocol.casefold(),
            model,
            protocol,
            index,
        )

    return sorted(range(len(keys)), key=sort_key)


def _defined_interval(low: float | None, high: float | None) -> tuple[float, float] | None:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return None
    return low, high
