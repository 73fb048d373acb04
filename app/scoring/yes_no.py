"""Read a judge model's yes/no reply as words, not substrings.

The reply is normalized with NFKC and split into words, which drops markdown and punctuation.
A leading "Answer:" or "Final answer:" label is skipped. The first remaining word decides:

- "yes" or "true" (any case) is True.
- "no" or "false" is False.
- Any other first word is None: "Not sure", "I cannot tell", "Yesterday", "Nope", "Yeah".

Informal forms such as "nope", "yep" and "yeah" are deliberately not accepted. The judge is
asked for yes or no, so an off-format reply is reported as unreadable instead of guessed.
A reply that gives both answers, such as "Yes and no", "Yes/No" or "Yes. No.", is None.
An opposite word that starts a longer phrase does not count, so "Yes, no dog is visible." is True.
"""

from __future__ import annotations

import re
import unicodedata

_YES_WORDS = frozenset({"yes", "true"})
_NO_WORDS = frozenset({"no", "false"})

# A word is a run of letters with optional inner apostrophes or hyphens ("isn't", "no-one").
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019-][^\W\d_]+)*")
_ANSWER_LABEL = re.compile(r"\A[\W_]*(?:final\s+)?answer[\W_]*?:", re.IGNORECASE)
# Connectors that join two answers into one reply: "yes and no", "yes or no".
_BOTH_CONNECTORS = frozenset({"and", "or"})


def parse_yes_no(reply: str) -> bool | None:
    """Parse a judge reply into True (yes), False (no) or None (unreadable or both)."""
    if not isinstance(reply, str):
        return None
    text = unicodedata.normalize("NFKC", reply)
    text = _ANSWER_LABEL.sub("", text, count=1)

    first = _WORD.search(text)
    if first is None:
        return None
    word = first.group().casefold()
    if word in _YES_WORDS:
        answer = True
    elif word in _NO_WORDS:
        answer = False
    else:
        return None

    opposite = _NO_WORDS if answer else _YES_WORDS
    if _gives_opposite_next(text, first.end(), opposite):
        return None
    return answer


def _gives_opposite_next(text: str, position: int, opposite: frozenset[str]) -> bool:
    """Tell whether the words right after the first one give the opposite answer.

    The opposite word counts when it comes next, optionally after "and" or "or", and ends its
    clause: "Yes and no", "Yes. No.", "Yes or no, it depends". It always counts after a slash,
    as in "Yes/No". "Yes, no dog is visible" and "Yes, and no other animals" keep their yes.
    """
    following = list(_WORD.finditer(text, position))
    index = 0
    if following and following[0].group().casefold() in _BOTH_CONNECTORS:
        index = 1
    if index >= len(following) or following[index].group().casefold() not in opposite:
        return False

    opposite_word = following[index]
    if index == 0 and "/" in text[position : opposite_word.start()]:
        return True
    if index + 1 == len(following):
        return True
    gap_after = text[opposite_word.end() : following[index + 1].start()]
    return gap_after.strip() != ""
