"""Text normalisation and tokenisation for matching.

A message becomes a list of paragraphs (split at line breaks); each is a list of tokens, and
each token carries the index of its clause. Intent patterns match inside one paragraph (chat
messages punctuate haphazardly: "Заказ 661234. Не пришёл."), negation only within one clause
(punctuation and contrast words such as "но"/"but" end a clause).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_CONTRACTIONS = (
    (re.compile(r"\bcan[’']t\b"), "can not"),
    (re.compile(r"\bwon[’']t\b"), "will not"),
    (re.compile(r"n[’']t\b"), " not"),
    # the same typed without the apostrophe, as chat messages often are
    (re.compile(r"\b(do|does|did|is|are|was|were|has|have|had|could|would|should)nt\b"), r"\1 not"),
    (re.compile(r"\bcant\b"), "can not"),
    (re.compile(r"[’'](?:s|m|re|ve|d|ll)\b"), ""),
)
_PARAGRAPH_SPLIT = re.compile(r"\n+")
_NUMBER = re.compile(r"[0-9]+(?:[.,:/\-][0-9]+)*")
_CLAUSE_MARK = re.compile(r"[.!?;…,:()«»\"“”„—–]")
_WORD = re.compile(rf"{_NUMBER.pattern}|[a-zа-я0-9]+|{_CLAUSE_MARK.pattern}")
CLAUSE_WORDS = frozenset({"но", "а", "однако", "зато", "but", "however", "though"})


@dataclass(frozen=True, slots=True)
class Token:
    """A word of a paragraph and the clause it belongs to."""

    text: str
    clause: int


def normalise(text: str) -> str:
    """Lower-case, fold ё to е and expand English contractions."""
    text = unicodedata.normalize("NFC", text).lower().replace("ё", "е")
    for pattern, replacement in _CONTRACTIONS:
        text = pattern.sub(replacement, text)
    return text


def paragraphs(text: str) -> list[list[Token]]:
    """Split normalised text into paragraphs of clause-tagged word tokens."""
    result = []
    for chunk in _PARAGRAPH_SPLIT.split(text):
        clause = 0
        tokens: list[Token] = []
        for word in _WORD.findall(chunk):
            if _CLAUSE_MARK.fullmatch(word) or word in CLAUSE_WORDS:
                clause += 1
            elif not _NUMBER.fullmatch(word) or (word.isdigit() and len(word) < 4):
                # Long or punctuated numbers (orders, phones, dates, sums) carry no intent and
                # would only widen the gap between the words of a pattern; "2 раза" stays.
                tokens.append(Token(word, clause))
        if tokens:
            result.append(tokens)
    return result
