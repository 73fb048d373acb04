"""Extract the chosen option letter from a model's free-text answer to a multiple-choice question.

The response is normalized with NFKC, so full-width letters and brackets read as ASCII.
Valid letters are the keys of ``options`` when given, else A-D, and a letter outside that set
is never returned. The rules run in this order and the first that yields a letter wins:

1. Empty or non-text response: no choice.
2. Bare letter: the whole response is one letter in either case, optionally wrapped as
   ``(B)``, ``[B]`` or ``B.``, ``B)``, ``B:``.
3. Explicit statements anywhere in the text: ``\\boxed{B}``, ``<answer>B</answer>``,
   "Answer: B", "The answer is b", "the correct option is B", "I choose B", "B is correct",
   "..., so B" at the very end, and "Option B" at the start. When several disagree, the last one
   wins and the reason lists all of them.
4. Letter on the last line: a multi-line response whose last line is a bare, bold or
   labelled letter.
5. Bold letter: ``**B**``, ``**(B)**`` or ``**B. text**``, when all bold letters agree.
6. Leading option label: the response starts with "B." / "B)" / "B:" / "(B)" followed by text.
7. Option text: the response, ignoring case and punctuation, equals the text of exactly one option.
8. Letters mentioned: stand-alone upper-case letters. One distinct letter is the choice.
   Several distinct letters give no choice. A capital "A" or "I" followed by a lower-case word
   ("A dog sits") is read as an article or pronoun, and a letter right after "not" is skipped.
9. Option text contained: the response contains the full text of exactly one option.
   Longer option texts are matched first, so "red" inside "red square" does not count twice.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

DEFAULT_LETTERS: tuple[str, ...] = ("A", "B", "C", "D")

REASON_EMPTY = "empty response"
REASON_NOT_TEXT = "response is not text"
REASON_BARE = "bare letter"
REASON_BOXED = "boxed letter"
REASON_ANSWER_TAG = "answer tag"
REASON_STATEMENT = "explicit answer statement"
REASON_LAST_LINE = "letter on the last line"
REASON_BOLD = "bold letter"
REASON_LABEL = "leading option label"
REASON_OPTION_TEXT = "option text"
REASON_SINGLE_MENTION = "single letter mentioned"
REASON_SEVERAL_MENTIONS = "several letters mentioned"
REASON_SEVERAL_OPTION_TEXTS = "text of several options found"
REASON_OUT_OF_SET = "letter outside the options"
REASON_NO_CHOICE = "no choice found"


@dataclass(frozen=True)
class ChoiceResult:
    """Extracted letter and the rule that produced it.

    ``letter`` is an upper-case letter, or None when no single choice could be read.
    ``reason`` is a short human-readable explanation that starts with one of the ``REASON_*``
    constants.
    """

    letter: str | None
    reason: str


# Markdown emphasis, code marks, math delimiters and quotes that may wrap a letter.
_WRAP_CHARS = "*_`$\"'"

# A single letter not touching other letters, digits or an apostrophe ("isn't", "A's").
_LETTER = r"(?<![A-Za-z0-9'])(?P<letter>[A-Za-z])(?![A-Za-z0-9'])"

# Separators allowed between an answer keyword and the letter: spaces, markdown, colons,
# dashes and opening brackets, then an optional "option"/"choice"/"letter" word.
_SEP = r"[\s*_`:=\-\u2013\u2014(\[{]*"
_OPTION_WORD = r"(?:(?:option|choice|letter)\b" + _SEP + r")?"

_STATEMENT_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        # "Answer: C", "Final answer: (D)", "The answer is d", "my answer would be B".
        r"\banswer\b(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be))?\b"
        + _SEP
        + _OPTION_WORD
        + _LETTER,
        # "the correct option is B", "the right choice: C", "best option would be A".
        r"\b(?:correct|right|best|final)\s+(?:option|choice)\b"
        r"(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be))?\b"
        + _SEP
        + _OPTION_WORD
        + _LETTER,
        # "I choose C", "I would pick option B", "I'll go with A", "my choice is D".
        r"(?:\bi\s+(?:would\s+|will\s+)?|\bi'(?:ll|d)\s+)"
        r"(?:choose|chose|pick|select|go\s+with|opt\s+for)\b" + _SEP + _OPTION_WORD + _LETTER,
        r"\bmy\s+choice\b(?:\s+is)?\b" + _SEP + _OPTION_WORD + _LETTER,
    )
)

# "B is correct", "(B) is the right answer", "option b is correct".
_LETTER_IS_CORRECT = re.compile(
    r"(?:(?P<word>\b(?:option|choice)\s+)|(?<![A-Za-z0-9']))[(\[]?(?P<letter>[A-Za-z])[)\]]?"
    r"(?![A-Za-z0-9'])\s+is\s+(?:the\s+)?(?:correct|right|best)\b",
    re.IGNORECASE,
)

# "Option B" or "Choice B" at the start of the response, followed by punctuation or the end.
_LEADING_OPTION_WORD = re.compile(
    r"\A[\s*_`]*(?:option|choice)\s*[(\[]?(?P<letter>[A-Za-z])[)\]]?[*_`]*(?=\s*(?:[.,:;)!]|\Z))",
    re.IGNORECASE,
)

# "..., so C", "Therefore, (B)." and similar when it is the very end of the response.
_CONCLUSION = re.compile(
    r"\b(?:so|therefore|thus|hence)\b,?[\s*_`:(\[]*" + _OPTION_WORD + r"(?P<letter>[A-Za-z])"
    r"(?![A-Za-z0-9'])[)\]*_`]*\s*[.!]?[*_`\s]*\Z",
    re.IGNORECASE,
)

_BOXED = re.compile(r"\\boxed\s*\{(?P<content>(?:[^{}]|\{[^{}]*\})*)\}")
_ANSWER_TAG = re.compile(r"<answer>(?P<content>.*?)</answer>", re.IGNORECASE | re.DOTALL)
_BOLD = re.compile(r"(\*\*|__)(?P<content>.+?)\1", re.DOTALL)
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{(?P<inner>[^{}]*)\}")

_BARE_LETTER = re.compile(r"\A[(\[{<]?\s*(?P<letter>[A-Za-z])\s*[)\]}>]?\s*[.:!)]?\Z")
_LABEL = re.compile(r"\A(?:\((?P<p>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<d>[A-Za-z])[.):])(?:\s|\Z)")

# Lower-case words after which a capital "A" or "I" is still an option letter: "A or C", "A is".
_WORDS_AFTER_LETTER = frozenset(
    {"or", "and", "is", "was", "seems", "looks", "shows", "matches", "fits", "because", "since"}
)
_FOLLOWING_WORD = re.compile(r"\s+(?P<word>[a-z]+)")
_NEGATION_BEFORE = re.compile(
    r"(?:\bnot|n't|\bcannot|\bnever)(?:\s+be)?\s+(?:(?:option|choice)\s+)?[(\[*_]*\Z",
    re.IGNORECASE,
)
_NON_WORD = re.compile(r"[\W_]+")


def parse_options(evaluation_prompt: str) -> dict[str, str]:
    """Read the option lines of a multiple-choice prompt.

    Accepted labels are "A. text", "A) text", "(A) text" and "A: text", one option per line,
    optionally in bold or after a list bullet. Only upper-case labels count. The result keeps
    the first line for each letter and only the run of consecutive letters starting at A,
    so it is an empty dict when the prompt has no option A.

    NOTE: options written on one line ("A. red B. blue") are not split and give an empty dict.
    """
    found: dict[str, str] = {}
    line_pattern = re.compile(
        r"^[ \t]*(?:[-*+][ \t]+)?(?:\*\*)?"
        r"(?:\((?P<p>[A-Z])\)|(?P<d>[A-Z])[.):])"
        r"(?:\*\*)?[ \t]+(?P<text>\S.*?)[ \t]*$",
        re.MULTILINE,
    )
    normalized = unicodedata.normalize("NFKC", evaluation_prompt)
    for match in line_pattern.finditer(normalized):
        letter = match.group("p") or match.group("d")
        if letter not in found:
            found[letter] = match.group("text").strip()

    options: dict[str, str] = {}
    for code in range(ord("A"), ord("Z") + 1):
        letter = chr(code)
        if letter not in found:
            break
        options[letter] = found[letter]
    return options


def extract_choice(response: object, options: Mapping[str, str] | None = None) -> ChoiceResult:
    """Extract the chosen letter from ``response`` by the rules in the module docstring.

    ``response`` is a string, or a list whose first element is used. ``options`` maps letters
    to option texts. Its single-letter keys set the valid letters, and A-D are used when it is
    None or has no such keys.
    """
    text = _response_text(response)
    if text is None:
        return ChoiceResult(None, REASON_NOT_TEXT)
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        return ChoiceResult(None, REASON_EMPTY)

    option_texts = _normalize_options(options)
    valid = frozenset(option_texts) if option_texts else frozenset(DEFAULT_LETTERS)
    out_of_set: list[str] = []

    def accept(letter: str | None) -> str | None:
        """Upper-case a letter and keep it only when it is valid, recording the others."""
        if letter is None:
            return None
        upper = letter.upper()
        if upper in valid:
            return upper
        if upper not in out_of_set:
            out_of_set.append(upper)
        return None

    def accept_quietly(letter: str | None) -> str | None:
        """Upper-case a letter and keep it only when it is valid, without recording it."""
        upper = None if letter is None else letter.upper()
        return upper if upper in valid else None

    bare = _BARE_LETTER.match(text.strip(_WRAP_CHARS + " "))
    if bare is not None and text[0] not in "*_":
        letter = accept(bare.group("letter"))
        if letter is not None:
            return ChoiceResult(letter, REASON_BARE)

    result = (
        _explicit_statement(text, accept)
        or _last_line(text, accept)
        or _bold(text, accept)
        or _leading_label(text, accept)
        or _exact_option_text(text, option_texts)
        or _mentions(text, accept_quietly)
        or _contained_option_text(text, option_texts)
    )
    if result is not None:
        return result
    if out_of_set:
        return ChoiceResult(None, f"{REASON_OUT_OF_SET}: {', '.join(out_of_set)}")
    return ChoiceResult(None, REASON_NO_CHOICE)


def _response_text(response: object) -> str | None:
    if isinstance(response, list):
        if not response:
            return ""
        response = response[0]
    if response is None:
        return ""
    if isinstance(response, str):
        return response
    return None


def _normalize_options(options: Mapping[str, str] | None) -> dict[str, tuple[str, str]]:
    """Map upper-case single-letter keys to (normalized text, original text) pairs."""
    if not options:
        return {}
    normalized: dict[str, tuple[str, str]] = {}
    for key, value in options.items():
        letter = unicodedata.normalize("NFKC", str(key)).strip().upper()
        if len(letter) == 1 and "A" <= letter <= "Z":
            original = str(value).strip()
            normalized[letter] = (_normalize_words(original), original)
    return normalized


def _normalize_words(text: str) -> str:
    """Casefold and replace punctuation runs with single spaces."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", folded).split())


def _fragment_letter(fragment: str) -> str | None:
    """Read a short fragment (boxed content, bold text, a line) as a bare or labelled letter."""
    cleaned = _LATEX_TEXT.sub(lambda match: match.group("inner"), fragment)
    cleaned = cleaned.strip(_WRAP_CHARS + " \t\r\n")
    bare = _BARE_LETTER.match(cleaned)
    if bare is not None:
        return bare.group("letter")
    label = _LABEL.match(cleaned)
    if label is not None:
        return label.group("p") or label.group("b") or label.group("d")
    return None


def _is_article(text: str, letter_end: int, letter: str) -> bool:
    """Tell whether a letter is an English article or pronoun: "a dog", "A dog", "I think"."""
    if letter not in "aAI":
        return False
    following = _FOLLOWING_WORD.match(text, letter_end)
    return following is not None and following.group("word") not in _WORDS_AFTER_LETTER


# Upper-cases a letter and returns it when valid, else None.
_AcceptFn = Callable[[str | None], str | None]


def _explicit_statement(text: str, accept: _AcceptFn) -> ChoiceResult | None:
    """Apply rule 3: collect every explicit statement and let the last one win."""
    # Maps the position of each statement in the text to its (letter, reason).
    candidates: dict[int, tuple[str, str]] = {}

    for match in _BOXED.finditer(text):
        letter = accept(_fragment_letter(match.group("content")))
        if letter is not None:
            candidates[match.start()] = (letter, REASON_BOXED)
    for match in _ANSWER_TAG.finditer(text):
        letter = accept(_fragment_letter(match.group("content")))
        if letter is not None:
            candidates[match.start()] = (letter, REASON_ANSWER_TAG)

    statement_matches: list[re.Match[str]] = []
    for pattern in _STATEMENT_PATTERNS:
        statement_matches.extend(pattern.finditer(text))
    for pattern in (_LETTER_IS_CORRECT, _LEADING_OPTION_WORD, _CONCLUSION):
        statement_matches.extend(pattern.finditer(text))

    for match in statement_matches:
        raw = match.group("letter")
        # "the answer is a red circle" and "Answer: I think" name no option.
        # A capital "A" after an answer keyword is still the letter: "the answer is A because".
        if raw != "A" and _is_article(text, match.end("letter"), raw):
            continue
        if match.re is _LETTER_IS_CORRECT and raw.islower() and match.group("word") is None:
            continue
        if match.re is _CONCLUSION and raw.islower():
            continue
        letter = accept(raw)
        if letter is not None:
            candidates.setdefault(match.start("letter"), (letter, REASON_STATEMENT))

    if not candidates:
        return None
    ordered = [candidates[position] for position in sorted(candidates)]
    letter, reason = ordered[-1]
    distinct = _distinct(entry[0] for entry in ordered)
    if len(distinct) > 1:
        reason = f"{reason}, the last of several that disagree: {', '.join(distinct)}"
    return ChoiceResult(letter, reason)


def _last_line(text: str, accept: _AcceptFn) -> ChoiceResult | None:
    """Apply rule 4: a multi-line response whose last line contains only a letter."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        return None
    letter = accept(_fragment_letter(lines[-1]))
    if letter is None:
        return None
    return ChoiceResult(letter, REASON_LAST_LINE)


def _bold(text: str, accept: _AcceptFn) -> ChoiceResult | None:
    """Apply rule 5: bold letters, used only when every bold letter agrees."""
    letters: list[str] = []
    for match in _BOLD.finditer(text):
        letter = accept(_fragment_letter(match.group("content")))
        if letter is not None:
            letters.append(letter)
    distinct = _distinct(letters)
    if len(distinct) != 1:
        return None
    return ChoiceResult(distinct[0], REASON_BOLD)


def _leading_label(text: str, accept: _AcceptFn) -> ChoiceResult | None:
    """Apply rule 6: "C. 14 apples", "(C) because ..." at the start of the response."""
    match = _LABEL.match(text.lstrip(_WRAP_CHARS + " "))
    if match is None:
        return None
    letter = accept(match.group("p") or match.group("b") or match.group("d"))
    if letter is None:
        return None
    return ChoiceResult(letter, REASON_LABEL)


def _exact_option_text(
    text: str, option_texts: Mapping[str, tuple[str, str]]
) -> ChoiceResult | None:
    """Apply rule 7: the whole response is the text of exactly one option."""
    response = _normalize_words(text)
    matches = [
        letter for letter, (option, _) in option_texts.items() if option and option == response
    ]
    if len(matches) != 1:
        return None
    return _option_text_result(matches[0], option_texts)


def _option_text_result(letter: str, option_texts: Mapping[str, tuple[str, str]]) -> ChoiceResult:
    return ChoiceResult(letter, f"{REASON_OPTION_TEXT}: '{option_texts[letter][1]}'")


def _mentions(text: str, accept: _AcceptFn) -> ChoiceResult | None:
    """Apply rule 8: stand-alone upper-case letters anywhere in the text."""
    letters: list[str] = []
    for match in re.finditer(_LETTER, text):
        raw = match.group("letter")
        start, end = match.span("letter")
        # Lower-case letters count only in brackets, "(b)", because "a" is usually the article.
        bracketed = text[start - 1 : start] in "([" and text[end : end + 1] in ")]"
        if not raw.isupper() and not (start > 0 and end < len(text) and bracketed):
            continue
        if _is_article(text, end, raw):
            continue
        if _NEGATION_BEFORE.search(text[max(0, start - 30) : start]):
            continue
        letter = accept(raw)
        if letter is not None:
            letters.append(letter)
    distinct = _distinct(letters)
    if not distinct:
        return None
    if len(distinct) == 1:
        return ChoiceResult(distinct[0], REASON_SINGLE_MENTION)
    return ChoiceResult(None, f"{REASON_SEVERAL_MENTIONS}: {', '.join(distinct)}")


def _contained_option_text(
    text: str, option_texts: Mapping[str, tuple[str, str]]
) -> ChoiceResult | None:
    """Apply rule 9: the response contains the full text of exactly one option."""
    remaining = f" {_normalize_words(text)} "
    found: list[str] = []
    by_length = sorted(
        ((letter, option) for letter, (option, _) in option_texts.items() if option),
        key=lambda item: len(item[1]),
        reverse=True,
    )
    for letter, option in by_length:
        needle = f" {option} "
        if needle in remaining:
            found.append(letter)
            # Blank out the match so a shorter option inside it is not counted again.
            remaining = remaining.replace(needle, " | ")
    if not found:
        return None
    if len(found) == 1:
        return _option_text_result(found[0], option_texts)
    return ChoiceResult(None, f"{REASON_SEVERAL_OPTION_TEXTS}: {', '.join(sorted(found))}")


def _distinct(letters: Iterable[str]) -> list[str]:
    """Return the letters in first-seen order without repeats."""
    seen: list[str] = []
    for letter in letters:
        if letter not in seen:
            seen.append(letter)
    return seen
