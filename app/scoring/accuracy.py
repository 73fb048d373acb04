"""Accuracy at subtask, category, axis and total level, from per-item outcomes.

Denominators come from the benchmark, never from the upload, and an average over categories is
undefined (None) when any of its categories has no result.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ItemOutcome:
    task_type: str
    subtask: str | None
    correct: bool
    # A judge error is neither a pass nor a fail.
    judge_error: bool = False


@dataclass(frozen=True)
class Ratio:
    correct: int
    total: int
    judge_errors: int = 0

    @property
    def accuracy(self) -> float | None:
        """Correct / total; undefined while any item of the group awaits a judge."""
        if not self.total or self.judge_errors:
            return None
        return self.correct / self.total


@dataclass(frozen=True)
class Breakdown:
    categories: dict[str, Ratio]
    # Keyed by "task_type/subtask"; items without a subtask are left out.
    subtasks: dict[str, Ratio]


def summarize(outcomes: Iterable[ItemOutcome]) -> Breakdown:
    """Count correct items per category and subtask over one outcome per benchmark item."""
    categories: dict[str, list[int]] = {}
    subtasks: dict[str, list[int]] = {}
    for outcome in outcomes:
        groups = [categories.setdefault(outcome.task_type, [0, 0, 0])]
        if outcome.subtask is not None:
            groups.append(subtasks.setdefault(f"{outcome.task_type}/{outcome.subtask}", [0, 0, 0]))
        for counts in groups:
            counts[0] += outcome.correct and not outcome.judge_error
            counts[1] += 1
            counts[2] += outcome.judge_error
    return Breakdown(
        categories={key: Ratio(*counts) for key, counts in sorted(categories.items())},
        subtasks={key: Ratio(*counts) for key, counts in sorted(subtasks.items())},
    )


def mean_over(values: Mapping[str, float | None], keys: Sequence[str]) -> float | None:
    """Average ``values`` over ``keys``; None when a key is missing or undefined."""
    if not keys:
        return None
    selected = [values.get(key) for key in keys]
    if any(value is None for value in selected):
        return None
    return sum(value for value in selected if value is not None) / len(selected)


def difference(minuend: float | None, subtrahend: float | None) -> float | None:
    if minuend is None or subtrahend is None:
        return None
    return minuend - subtrahend
