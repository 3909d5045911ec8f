"""The pattern dictionary: shipped defaults, validation of overrides, compilation.

Shape (the shipped patterns.toml is the reference example):

    max_gap = 3                       # optional: words allowed between two pattern words
    [negation]                        # optional
    max_gap = 2                       # optional: words allowed between a negator and the match
    ru = ["не хотеть _", "_ не нужный"]   # "_" stands for the intent match being cancelled
    en = ["not want _"]
    [intents.NAME]                    # at least one intent; NAME is lower-case [a-z_]
    ru = ["где заказ|посылка", ...]   # patterns: words in order, within max_gap of each other
    en = ["where order|parcel", ...]

A pattern word is "a|b|c" (any of the alternatives). An alternative is a word, compared by
base form (pymorphy3 lemma, English stem), "=word" for that exact spelling, or "pref*" for any
word starting with pref. Patterns are matched in every language; the keys only group them.
A negation particle ("не", "not", "never", "no") binds tightly: at most one word may follow it
before the next pattern word, so "не доставили, хотя оплачено" is not "не оплачено".
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from callcenter.classify.model import PatternError
from callcenter.classify.morph import lemma
from callcenter.classify.text import normalise

LANGUAGES = ("ru", "en")
SLOT = "_"
DEFAULT_MAX_GAP = 3
DEFAULT_NEGATION_GAP = 2
MAX_GAP_LIMIT = 10
NEGATION_PARTICLES = frozenset({"не", "not", "never", "no"})
PARTICLE_GAP = 1
_INTENT_NAME = re.compile(r"[a-z][a-z_]{0,39}")
_ALTERNATIVE = re.compile(r"(=?)([a-zа-я0-9]+)(\*?)")


@dataclass(frozen=True, slots=True)
class Term:
    """One pattern word: matches a token whose base forms or spelling it accepts."""

    lemmas: frozenset[str]
    spellings: frozenset[str]
    prefixes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntentPattern:
    """terms: ids of its words; gaps[i]: words allowed between terms[i] and terms[i + 1]."""

    intent: str
    terms: tuple[int, ...]
    gaps: tuple[int, ...]
    source: str


@dataclass(frozen=True, slots=True)
class NegationTemplate:
    before: tuple[int, ...]
    after: tuple[int, ...]
    source: str


@dataclass(frozen=True)
class CompiledPatterns:
    intents: tuple[str, ...]
    patterns: tuple[IntentPattern, ...]
    negations: tuple[NegationTemplate, ...]
    terms: tuple[Term, ...]
    max_gap: int
    negation_gap: int

    def vocabulary(self) -> frozenset[str]:
        """Words, spellings and prefixes that pattern words accept: typo-correction targets."""
        return frozenset(
            word for term in self.terms for word in (*term.lemmas, *term.spellings, *term.prefixes)
        )


@cache
def _default_text() -> str:
    return resources.files(__package__).joinpath("patterns.toml").read_text(encoding="utf-8")


def default_patterns() -> dict[str, Any]:
    """A fresh copy of the shipped dictionary, to edit and pass to Classifier(patterns=...)."""
    return copy.deepcopy(_parse_default())


@cache
def _parse_default() -> dict[str, Any]:
    return tomllib.loads(_default_text())


@cache
def default_compiled() -> CompiledPatterns:
    return compile_patterns(_parse_default())


class _Builder:
    def __init__(self) -> None:
        self.term_ids: dict[Term, int] = {}

    def term(self, word: str, where: str) -> int:
        lemmas, spellings, prefixes = set(), set(), []
        for alternative in word.split("|"):
            match = _ALTERNATIVE.fullmatch(alternative)
            if not match or (match[1] and match[3]):
                raise PatternError(
                    f"{where}: bad word {alternative!r}; write letters or digits, optionally "
                    "'=word' for an exact spelling or 'prefix*' (no hyphens: write two words)"
                )
            exact, body, star = match.groups()
            if star:
                prefixes.append(body)
            elif exact:
                spellings.add(body)
            else:
                lemmas.update({body, lemma(body)})
        term = Term(frozenset(lemmas), frozenset(spellings), tuple(sorted(prefixes)))
        return self.term_ids.setdefault(term, len(self.term_ids))

    def words(self, text: Any, where: str) -> list[str]:
        if not isinstance(text, str):
            raise PatternError(f"{where}: expected a string, got {type(text).__name__}")
        words = normalise(text).split()
        if not words:
            raise PatternError(f"{where}: empty pattern")
        return words


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PatternError(f"{where}: expected a table/dict, got {type(value).__name__}")
    return value


def _gap(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_GAP_LIMIT:
        raise PatternError(f"{where}: expected an integer from 0 to {MAX_GAP_LIMIT}, got {value!r}")
    return value


def _by_language(table: Mapping[str, Any], where: str, extra: frozenset[str]) -> list:
    """(language, index, text) of every entry of a {language: [strings]} table."""
    entries = []
    for key, value in table.items():
        if key in extra:
            continue
        if key not in LANGUAGES:
            allowed = ", ".join(sorted({*LANGUAGES, *extra}))
            raise PatternError(f"{where}: unknown key {key!r} (allowed: {allowed})")
        if not isinstance(value, list):
            raise PatternError(f"{where}.{key}: expected a list of strings")
        entries.extend((f"{where}.{key}[{i}]", text) for i, text in enumerate(value))
    return entries


def compile_patterns(data: Any) -> CompiledPatterns:
    """Validate a pattern dictionary and compile it; raises PatternError naming the entry."""
    data = _mapping(data, "patterns")
    unknown = set(data) - {"max_gap", "negation", "intents"}
    if unknown:
        raise PatternError(f"patterns: unknown key(s) {sorted(unknown)}")
    max_gap = _gap(data.get("max_gap", DEFAULT_MAX_GAP), "max_gap")
    builder = _Builder()

    intents_table = _mapping(data.get("intents"), "intents")
    if not intents_table:
        raise PatternError("intents: at least one intent is needed")
    patterns = []
    for name, table in intents_table.items():
        if not isinstance(name, str) or not _INTENT_NAME.fullmatch(name):
            raise PatternError(f"intents: bad intent name {name!r} (lower-case a-z and _)")
        where = f"intents.{name}"
        entries = _by_language(_mapping(table, where), where, frozenset())
        if not entries:
            raise PatternError(f"{where}: no patterns")
        for place, text in entries:
            words = builder.words(text, place)
            if SLOT in words:
                raise PatternError(f"{place}: '_' is only allowed in negation templates")
            terms = tuple(builder.term(word, place) for word in words)
            gaps = tuple(PARTICLE_GAP if word in NEGATION_PARTICLES else max_gap for word in words)
            patterns.append(IntentPattern(name, terms, gaps[:-1], text))

    negation = _mapping(data.get("negation", {}), "negation")
    negation_gap = _gap(negation.get("max_gap", DEFAULT_NEGATION_GAP), "negation.max_gap")
    negations = []
    for place, text in _by_language(negation, "negation", frozenset({"max_gap"})):
        words = builder.words(text, place)
        if words.count(SLOT) != 1 or len(words) == 1:
            raise PatternError(f"{place}: a template needs exactly one '_' and some words")
        cut = words.index(SLOT)
        before = tuple(builder.term(word, place) for word in words[:cut])
        after = tuple(builder.term(word, place) for word in words[cut + 1 :])
        negations.append(NegationTemplate(before, after, text))

    terms = tuple(sorted(builder.term_ids, key=builder.term_ids.__getitem__))
    return CompiledPatterns(
        intents=tuple(sorted(intents_table)),
        patterns=tuple(patterns),
        negations=tuple(negations),
        terms=terms,
        max_gap=max_gap,
        negation_gap=negation_gap,
    )


def term_index(terms: tuple[Term, ...]) -> tuple[dict, dict, tuple]:
    """Lookup tables from base form, spelling and prefix to the ids of the terms accepting it."""
    by_lemma: dict[str, set[int]] = defaultdict(set)
    by_spelling: dict[str, set[int]] = defaultdict(set)
    prefixes = []
    for term_id, term in enumerate(terms):
        for word in term.lemmas:
            by_lemma[word].add(term_id)
        for word in term.spellings:
            by_spelling[word].add(term_id)
        prefixes.extend((prefix, term_id) for prefix in term.prefixes)
    return dict(by_lemma), dict(by_spelling), tuple(prefixes)
