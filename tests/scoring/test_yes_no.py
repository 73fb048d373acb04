"""Tests for the judge yes/no reply parser."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.scoring.yes_no import parse_yes_no

# (id, reply, expected)
CASES: list[tuple[str, str, bool | None]] = [
    # Yes.
    ("yes", "Yes", True),
    ("yes lower with period", "yes.", True),
    ("yes upper", "YES", True),
    ("yes bold", "**Yes**", True),
    ("yes with sentence", "Yes, the cat is black.", True),
    ("yes with exclamation", "Yes!!", True),
    ("yes in backticks after blank lines", "  \n`yes`", True),
    ("yes full-width", "Ｙｅｓ", True),
    ("true", "True", True),
    ("yes after answer label", "Answer: yes", True),
    ("yes after bold final answer label", "**Final answer:** Yes", True),
    ("yes then no inside phrase", "Yes, no dog is visible.", True),
    ("yes and no inside phrase", "Yes, and no other animals are present.", True),
    ("yes with later no", "Yes. There is no second cat.", True),
    # No.
    ("no", "No", False),
    ("no lower", "no", False),
    ("no with sentence", "No, the eyes are closed.", False),
    ("no bold after answer label", "**Answer:** No", False),
    ("no repeated", "No, no, no.", False),
    ("false", "false.", False),
    ("no with later yes", "No. Yes would need a red hat.", False),
    # Neither: not a yes/no word first.
    ("not sure", "Not sure", None),
    ("nope", "Nope", None),
    ("yeah", "Yeah", None),
    ("yep", "Yep.", None),
    ("cannot tell", "I cannot tell", None),
    ("empty", "", None),
    ("whitespace", "   \n", None),
    ("punctuation only", "**...**", None),
    ("yesterday", "Yesterday", None),
    ("none", "None", None),
    ("noo", "Noo", None),
    ("no-one", "No-one is in the picture.", None),
    ("yes inside sentence", "The answer is yes.", None),
    ("number", "1", None),
    # Both.
    ("yes and no", "Yes and no", None),
    ("yes or no with clause", "Yes or no, it depends.", None),
    ("no and yes", "No and yes", None),
    ("yes slash no", "Yes/No", None),
    ("yes slash no spaced", "yes / no", None),
    ("yes then no sentence", "Yes. No.", None),
    ("no then yes on lines", "No.\nYes.", None),
    ("yes comma no", "Yes, no.", None),
]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [pytest.param(reply, expected, id=case_id) for case_id, reply, expected in CASES],
)
def test_parse_yes_no(reply: str, expected: bool | None) -> None:
    assert parse_yes_no(reply) is expected


@pytest.mark.parametrize(
    ("reply", "wrong"),
    [
        pytest.param("No, the eyes are closed.", True, id="substring yes in eyes"),
        pytest.param("Not sure", False, id="substring no in not"),
        pytest.param("I do not know", False, id="substring no in know"),
        pytest.param("Yesterday", True, id="substring yes in yesterday"),
    ],
)
def test_parse_yes_no_avoids_substring_defect(reply: str, wrong: bool) -> None:
    assert parse_yes_no(reply) is not wrong


def test_parse_yes_no_non_text() -> None:
    assert parse_yes_no(None) is None  # type: ignore[arg-type]


@given(st.text(max_size=100))
def test_parse_yes_no_returns_bool_or_none(reply: str) -> None:
    assert parse_yes_no(reply) in (True, False, None)
