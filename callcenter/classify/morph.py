"""Word analysis: Russian lemmas from pymorphy3, a light English stemmer, glued negation.

Everything here is cached per distinct word: a chat stream repeats the same few thousand
words, so after warm-up classification never calls the morphological analyser.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pymorphy3

_CYRILLIC = re.compile(r"[а-я]+")
_LATIN = re.compile(r"[a-z]+")
_NEGATION_PREFIX = "не"
MIN_LEMMA_SCORE = 0.1


@lru_cache(maxsize=1)
def analyzer() -> pymorphy3.MorphAnalyzer:
    """The shared analyser (loading the dictionaries takes a noticeable fraction of a second)."""
    return pymorphy3.MorphAnalyzer()


def english_stem(word: str) -> str:
    """Strip common English inflections so that "charged", "charges" and "charge" agree."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("ing") and len(word) > 5:
        word = word[:-3]
    elif word.endswith("ed") and len(word) > 4:
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "lsz":
        word = word[:-1]
    if len(word) > 3 and word.endswith("e"):
        word = word[:-1]
    return word


@lru_cache(maxsize=65536)
def lemmas(word: str) -> tuple[str, ...]:
    """Plausible base forms of a normalised word (pymorphy3), or its English stem.

    Readings below MIN_LEMMA_SCORE are dropped: "уже" is "already", not "narrower".
    """
    if _CYRILLIC.fullmatch(word):
        scores: dict[str, float] = {}
        for parse in analyzer().parse(word):
            form = parse.normal_form.replace("ё", "е")
            scores[form] = scores.get(form, 0.0) + parse.score
        best = max(scores, key=scores.__getitem__)
        return tuple(sorted(f for f, s in scores.items() if s >= MIN_LEMMA_SCORE or f == best))
    if _LATIN.fullmatch(word):
        return (english_stem(word),)
    return (word,)


def lemma(word: str) -> str:
    """The most probable base form of a normalised word (used for pattern terms)."""
    if _CYRILLIC.fullmatch(word):
        return analyzer().parse(word)[0].normal_form.replace("ё", "е")
    return lemmas(word)[0]


@lru_cache(maxsize=65536)
def is_known(word: str) -> bool:
    """Whether the Russian dictionary has this word (Latin words count as unknown)."""
    return bool(_CYRILLIC.fullmatch(word)) and analyzer().word_is_known(word)


@lru_cache(maxsize=65536)
def split_glued_negation(word: str) -> tuple[str, ...]:
    """Split "непришел" into ("не", "пришел") when only the remainder is a real word."""
    rest = word[len(_NEGATION_PREFIX) :]
    if (
        word.startswith(_NEGATION_PREFIX)
        and len(rest) >= 3
        and _CYRILLIC.fullmatch(word)
        and not is_known(word)
        and is_known(rest)
    ):
        return (_NEGATION_PREFIX, rest)
    return (word,)
