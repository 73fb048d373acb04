"""Tests for the multiple-choice letter extractor."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.scoring.choice import (
    REASON_ANSWER_TAG,
    REASON_BARE,
    REASON_BOLD,
    REASON_BOXED,
    REASON_EMPTY,
    REASON_LABEL,
    REASON_LAST_LINE,
    REASON_NO_CHOICE,
    REASON_NOT_TEXT,
    REASON_OPTION_TEXT,
    REASON_OUT_OF_SET,
    REASON_SEVERAL_MENTIONS,
    REASON_SEVERAL_OPTION_TEXTS,
    REASON_SINGLE_MENTION,
    REASON_STATEMENT,
    ChoiceResult,
    extract_choice,
    parse_options,
)

SHAPES = {"A": "red circle", "B": "blue square", "C": "green triangle", "D": "yellow star"}

PROMPT = """Look at the image. Which shape is in the top-left corner?
A. red circle
B. blue square
C. green triangle
D. yellow star
Answer with the option's letter from the given choices directly."""

# (id, response, expected letter, expected reason prefix)
WITHOUT_OPTIONS: list[tuple[str, object, str | None, str]] = [
    # Bare letters in either case, with the usual wrappers.
    ("bare upper", "B", "B", REASON_BARE),
    ("bare lower", "b", "B", REASON_BARE),
    ("bare with period", "B.", "B", REASON_BARE),
    ("bare with parenthesis", "B)", "B", REASON_BARE),
    ("bare in parentheses", "(B)", "B", REASON_BARE),
    ("bare in brackets", "[B]", "B", REASON_BARE),
    ("bare lower in parentheses", "(c)", "C", REASON_BARE),
    ("bare with colon", "D:", "D", REASON_BARE),
    ("bare in backticks", "`A`", "A", REASON_BARE),
    ("bare article-like a", "a", "A", REASON_BARE),
    ("bare surrounded by whitespace", "  \n b \n", "B", REASON_BARE),
    ("bare full-width", "Ａ", "A", REASON_BARE),
    ("bare full-width parentheses", "（Ｂ）", "B", REASON_BARE),
    # Explicit answer statements.
    ("answer colon", "Answer: C", "C", REASON_STATEMENT),
    ("answer colon lower", "answer: c", "C", REASON_STATEMENT),
    ("final answer parentheses", "Final answer: (D)", "D", REASON_STATEMENT),
    ("answer is lower", "The answer is d", "D", REASON_STATEMENT),
    ("answer is lower period", "the answer is a.", "A", REASON_STATEMENT),
    ("answer is capital A because", "The answer is A because it is red.", "A", REASON_STATEMENT),
    ("correct option is", "the correct option is B", "B", REASON_STATEMENT),
    ("right choice colon", "The right choice: C", "C", REASON_STATEMENT),
    ("i choose", "I choose C", "C", REASON_STATEMENT),
    ("i would go with option", "I would go with option (C).", "C", REASON_STATEMENT),
    ("i will pick", "I'll pick D.", "D", REASON_STATEMENT),
    ("my choice is", "My choice is b", "B", REASON_STATEMENT),
    ("option at start", "Option B", "B", REASON_STATEMENT),
    ("option at start with text", "Option B: the blue square", "B", REASON_STATEMENT),
    ("answer is option", "The answer is option B", "B", REASON_STATEMENT),
    ("bold answer label", "**Answer:** C", "C", REASON_STATEMENT),
    ("bold answer statement", "**Answer: C**", "C", REASON_STATEMENT),
    ("answer bold letter", "The correct answer is **B**.", "B", REASON_STATEMENT),
    ("full-width answer", "Ａｎｓｗｅｒ：Ｃ", "C", REASON_STATEMENT),
    ("letter is correct", "B is correct", "B", REASON_STATEMENT),
    (
        "wrong option then right option",
        "Option A is wrong, option C is right",
        "C",
        REASON_STATEMENT,
    ),
    ("lower-case letter is correct ignored", "a is correct", None, REASON_NO_CHOICE),
    ("option is the right answer", "Option (c) is the right answer.", "C", REASON_STATEMENT),
    ("so at the end", "A dog sits on the left, so C", "C", REASON_STATEMENT),
    ("therefore at the end", "Therefore, (B).", "B", REASON_STATEMENT),
    # Boxed letters and answer tags.
    ("boxed", "\\boxed{B}", "B", REASON_BOXED),
    ("boxed in math", "$\\boxed{C}$", "C", REASON_BOXED),
    ("boxed text", "The result is $\\boxed{\\text{D}}$.", "D", REASON_BOXED),
    ("boxed with label", "\\boxed{B. blue square}", "B", REASON_BOXED),
    ("answer tag", "<answer>D</answer>", "D", REASON_ANSWER_TAG),
    (
        "answer tag after reasoning",
        "<think>A or B?</think><answer>(B)</answer>",
        "B",
        REASON_ANSWER_TAG,
    ),
    # Bold letters.
    ("bold", "**A**", "A", REASON_BOLD),
    ("bold in parentheses", "**(A)**", "A", REASON_BOLD),
    ("bold label with text", "It must be **C. 14 apples** here.", "C", REASON_BOLD),
    ("bold underscores", "__D__", "D", REASON_BOLD),
    # Leading option labels.
    ("leading label period", "C. 14 apples", "C", REASON_LABEL),
    ("leading label parentheses", "(C) because the count is 14", "C", REASON_LABEL),
    ("leading label colon", "D: the star", "D", REASON_LABEL),
    ("bold label then text", "**B.** The square is blue.", "B", REASON_BOLD),
    # Chain of thought.
    (
        "reasoning then last line",
        "Let me look at the shapes.\nThe top-left one is blue.\n\nB",
        "B",
        REASON_LAST_LINE,
    ),
    (
        "reasoning then answer statement",
        "Step 1: A is wrong.\nStep 2: B is wrong.\nTherefore, the answer is D.",
        "D",
        REASON_STATEMENT,
    ),
    (
        "reasoning then therefore",
        "Step 1: A is wrong.\nStep 2: B is wrong.\nTherefore, D.",
        "D",
        REASON_STATEMENT,
    ),
    (
        "markdown reasoning",
        "### Analysis\n- The shape is blue.\n- It has four sides.\n\n**Answer:** B\n",
        "B",
        REASON_STATEMENT,
    ),
    # Letters mentioned in free text.
    ("based on the image", "Based on the image, D.", "D", REASON_SINGLE_MENTION),
    ("article then letter", "A dog sits on the left of C", "C", REASON_SINGLE_MENTION),
    ("pronoun then letter", "I think it is B because it is blue.", "B", REASON_SINGLE_MENTION),
    ("bracketed lower mention", "I think (b) fits.", "B", REASON_SINGLE_MENTION),
    ("same letter twice", "B, definitely B", "B", REASON_SINGLE_MENTION),
    ("either or", "It is either A or C", None, f"{REASON_SEVERAL_MENTIONS}: A, C"),
    ("two letters listed", "A, C", None, f"{REASON_SEVERAL_MENTIONS}: A, C"),
    ("negated letter skipped", "It is not A, it is C", "C", REASON_SINGLE_MENTION),
    # Explicit statements win over earlier letters, and the last statement wins.
    (
        "statement wins over mentions",
        "Looking at A and B first, the answer is C.",
        "C",
        REASON_STATEMENT,
    ),
    (
        "statement wins over leading label",
        "(A) looks close, but the answer is B.",
        "B",
        REASON_STATEMENT,
    ),
    (
        "last statement wins",
        "The answer is A. Wait, actually the answer is C.",
        "C",
        f"{REASON_STATEMENT}, the last of several that disagree: A, C",
    ),
    (
        "boxed after statement",
        "Answer: A\nOn reflection: \\boxed{D}",
        "D",
        f"{REASON_BOXED}, the last of several that disagree: A, D",
    ),
    ("repeated statement agrees", "Answer: B. So the answer is B.", "B", REASON_STATEMENT),
    # Letters outside A-D are never returned.
    ("bare outside set", "E", None, f"{REASON_OUT_OF_SET}: E"),
    ("statement outside set", "Answer: E", None, f"{REASON_OUT_OF_SET}: E"),
    ("boxed outside set", "\\boxed{F}", None, f"{REASON_OUT_OF_SET}: F"),
    ("outside set then valid", "Answer: E. No wait, the answer is B.", "B", REASON_STATEMENT),
    # Nothing to read.
    ("no letter", "The image shows a cat.", None, REASON_NO_CHOICE),
    ("answer is article", "The answer is a red circle", None, REASON_NO_CHOICE),
    ("answer i think", "Answer: I don't know", None, REASON_NO_CHOICE),
    ("negated answer", "The answer is not A.", None, REASON_NO_CHOICE),
    ("abbreviation letters", "The flag of the U.S. is shown.", None, REASON_NO_CHOICE),
    ("contraction", "isn't", None, REASON_NO_CHOICE),
    ("capital words only", "Based Cats Dogs", None, REASON_NO_CHOICE),
    ("empty", "", None, REASON_EMPTY),
    ("whitespace only", " \n\t ", None, REASON_EMPTY),
    ("none", None, None, REASON_EMPTY),
    # The submitter's `response` field may be a list.
    ("list first element", ["C", "A"], "C", REASON_BARE),
    ("list empty", [], None, REASON_EMPTY),
    ("list of non-text", [5], None, REASON_NOT_TEXT),
    ("integer", 5, None, REASON_NOT_TEXT),
    ("dict", {"answer": "A"}, None, REASON_NOT_TEXT),
]

WITH_OPTIONS: list[tuple[str, str, str | None, str]] = [
    ("option text exact", "Blue square", "B", f"{REASON_OPTION_TEXT}: 'blue square'"),
    (
        "option text upper with punctuation",
        "BLUE SQUARE!",
        "B",
        f"{REASON_OPTION_TEXT}: 'blue square'",
    ),
    (
        "option text in sentence",
        "The shape is a blue square.",
        "B",
        f"{REASON_OPTION_TEXT}: 'blue square'",
    ),
    (
        "option text of two options",
        "red circle or blue square",
        None,
        f"{REASON_SEVERAL_OPTION_TEXTS}: A, B",
    ),
    ("letter wins over option text", "B. blue square", "B", REASON_LABEL),
    (
        "statement wins over option text",
        "Not the red circle, the answer is B.",
        "B",
        REASON_STATEMENT,
    ),
    ("unrelated text", "I cannot see the image.", None, REASON_NO_CHOICE),
]


@pytest.mark.parametrize(
    ("response", "letter", "reason"),
    [
        pytest.param(response, letter, reason, id=case_id)
        for case_id, response, letter, reason in WITHOUT_OPTIONS
    ],
)
def test_extract_choice_default_letters(response: object, letter: str | None, reason: str) -> None:
    result = extract_choice(response)
    assert result.letter == letter
    assert result.reason.startswith(reason), result.reason


@pytest.mark.parametrize(
    ("response", "letter", "reason"),
    [
        pytest.param(response, letter, reason, id=case_id)
        for case_id, response, letter, reason in WITH_OPTIONS
    ],
)
def test_extract_choice_with_options(response: str, letter: str | None, reason: str) -> None:
    result = extract_choice(response, SHAPES)
    assert result.letter == letter
    assert result.reason == reason or result.reason.startswith(reason), result.reason


@pytest.mark.parametrize(
    ("response", "wrong_letter", "letter"),
    [
        pytest.param("Based on the image, the answer is D.", "B", "D", id="based gives B"),
        pytest.param("A dog sits on the left, so C", "A", "C", id="article gives A"),
        pytest.param("b", None, "B", id="lower-case bare missed"),
        pytest.param("answer: c", None, "C", id="lower-case statement missed"),
    ],
)
def test_extract_choice_avoids_first_capital_defect(
    response: str, wrong_letter: str | None, letter: str
) -> None:
    result = extract_choice(response)
    assert result.letter != wrong_letter
    assert result.letter == letter


def test_extract_choice_result_type() -> None:
    assert extract_choice("A") == ChoiceResult("A", REASON_BARE)


def test_extract_choice_option_keys_set_letters() -> None:
    six = {letter: f"shape {letter}" for letter in "ABCDEF"}
    assert extract_choice("E", six).letter == "E"
    assert extract_choice("Answer: F", six).letter == "F"
    assert extract_choice("E", SHAPES).letter is None


def test_extract_choice_option_keys_narrow_letters() -> None:
    two = {"A": "yes", "B": "no"}
    result = extract_choice("C", two)
    assert result.letter is None
    assert result.reason == f"{REASON_OUT_OF_SET}: C"


def test_extract_choice_lower_case_option_keys() -> None:
    assert extract_choice("b", {"a": "red", "b": "blue"}).letter == "B"


def test_extract_choice_empty_options_use_default_letters() -> None:
    assert extract_choice("D", {}).letter == "D"


def test_extract_choice_longer_option_text_first() -> None:
    options = {"A": "red", "B": "red square", "C": "blue"}
    result = extract_choice("It is a red square.", options)
    assert result.letter == "B"
    assert result.reason == f"{REASON_OPTION_TEXT}: 'red square'"


def test_extract_choice_shorter_option_text_elsewhere() -> None:
    options = {"A": "red", "B": "red square", "C": "blue"}
    result = extract_choice("a red circle and a red square", options)
    assert result.letter is None
    assert result.reason == f"{REASON_SEVERAL_OPTION_TEXTS}: A, B"


def test_extract_choice_with_parsed_options() -> None:
    result = extract_choice("green triangle", parse_options(PROMPT))
    assert result.letter == "C"


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        pytest.param(PROMPT, SHAPES, id="period labels"),
        pytest.param("Q?\nA) one\nB) two", {"A": "one", "B": "two"}, id="parenthesis labels"),
        pytest.param(
            "Q?\n(A) one\n(B) two\n(C) three",
            {"A": "one", "B": "two", "C": "three"},
            id="bracketed labels",
        ),
        pytest.param("Q?\nA: one\nB: two", {"A": "one", "B": "two"}, id="colon labels"),
        pytest.param("Q?\n  A.  one  \n  B.  two", {"A": "one", "B": "two"}, id="indented labels"),
        pytest.param(
            "Q?\n- **A.** one\n- **B.** two", {"A": "one", "B": "two"}, id="bold bulleted labels"
        ),
        pytest.param("Q?\nＡ. one\nＢ. two", {"A": "one", "B": "two"}, id="full-width labels"),
        pytest.param(
            "Q?\nA. one\nB. two\nA. again", {"A": "one", "B": "two"}, id="first line per letter"
        ),
        pytest.param("Q?\nA. one\nB. two\nD. four", {"A": "one", "B": "two"}, id="stops at gap"),
        pytest.param("Q?\nB. two\nC. three", {}, id="no option A"),
        pytest.param("What is 2 + 2?", {}, id="no options"),
        pytest.param("", {}, id="empty prompt"),
        pytest.param("Q?\na. one\nb. two", {}, id="lower-case labels ignored"),
        pytest.param("A dog. B is here.", {}, id="sentences are not options"),
    ],
)
def test_parse_options(prompt: str, expected: dict[str, str]) -> None:
    assert parse_options(prompt) == expected


LETTERS = st.sampled_from(list(string.ascii_uppercase))
OPTION_SETS = st.one_of(
    st.none(),
    st.dictionaries(LETTERS, st.text(max_size=20), max_size=8),
)
# Pieces of text that the extraction rules react to.
FRAGMENTS: tuple[str, ...] = ("A", "b", "E", "Z", "a", "I", "Ａ", "ｅ", " ", "\n", ":", "**")
FRAGMENTS += ("(", ")", "answer", "is", "so", "not", "option", "\\boxed{", "}")
FRAGMENTS += ("<answer>", "</answer>")
# Free text, and text built from those fragments.
RESPONSES = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(FRAGMENTS),
        max_size=30,
    ).map("".join),
)


@settings(max_examples=500, deadline=None)
@given(response=RESPONSES, options=OPTION_SETS)
def test_extract_choice_stays_in_valid_set(response: str, options: dict[str, str] | None) -> None:
    result = extract_choice(response, options)
    valid = set(options) if options else {"A", "B", "C", "D"}
    assert result.letter is None or result.letter in valid
    assert result.reason
