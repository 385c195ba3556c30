"""Written answers (free_text, cloze) as codes for agreement: exact match after normalizing.

Two written answers agree when they are the same text after casefolding, trimming, collapsing
runs of whitespace and stripping punctuation around the answer ("The cat." and "the  cat"
agree; "the cat" and "a cat" do not). Agreement is then nominal α (or κ, percent) on those
texts: a stated, strict choice. It gives no credit for paraphrase, so on free text it reads as a
floor; the held-out `gold_token_f1` and `gold_chrf` columns grade closeness instead.

A cloze answer with several blanks is compared blank by blank: a list of answers, or text
'a | b' (as the generative head writes it), is normalized piece by piece and joined with ' | '.
"""

from __future__ import annotations

import unicodedata
from typing import Any

BLANK_SEPARATOR = "|"
"""Separates the blanks of one cloze answer in text."""
NORMALIZATION = "casefolded, whitespace collapsed, outer punctuation stripped"


def _outer(character: str) -> bool:
    return character.isspace() or unicodedata.category(character).startswith("P")


def normalize_answer(text: str) -> str:
    """One answer's comparable form: casefold, collapse whitespace, strip outer punctuation."""
    words = " ".join(str(text).casefold().split())
    start, end = 0, len(words)
    while start < end and _outer(words[start]):
        start += 1
    while end > start and _outer(words[end - 1]):
        end -= 1
    return words[start:end]


def answer_key(value: Any, task_type: str) -> str:
    """The normalized text an answer is compared by; cloze answers blank by blank."""
    if isinstance(value, list):
        pieces = [str(v) for v in value]
    elif task_type == "cloze":
        pieces = str(value).split(BLANK_SEPARATOR)
    else:
        pieces = [str(value)]
    return " | ".join(normalize_answer(piece) for piece in pieces)
