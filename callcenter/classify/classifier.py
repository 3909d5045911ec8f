"""The classifier: message text in, intents and order numbers out."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

from callcenter.classify import morph
from callcenter.classify.fuzzy import TypoIndex
from callcenter.classify.matcher import is_negated, positions_of, spans
from callcenter.classify.model import Classification
from callcenter.classify.orders import extract_order_numbers
from callcenter.classify.patterns import (
    CompiledPatterns,
    IntentPattern,
    compile_patterns,
    default_compiled,
    term_index,
)
from callcenter.classify.text import normalise, paragraphs

log = logging.getLogger(__name__)

_CYRILLIC = re.compile(r"[а-я]+")
_NEGATION = "не"
WORD_CACHE_SIZE = 65536


def _typo_forms(vocabulary: frozenset[str]) -> set[str]:
    """The vocabulary with every inflected form of its Russian words."""
    forms = set(vocabulary)
    for word in vocabulary:
        if _CYRILLIC.fullmatch(word):
            parse = morph.analyzer().parse(word)[0]
            forms.update(form.word.replace("ё", "е") for form in parse.lexeme)
    return forms


class Classifier:
    """Classifies customer messages with a pattern dictionary (the shipped one by default).

    patterns: a dictionary shaped like patterns.toml (see patterns.py), e.g. an admin-edited
    copy of default_patterns(); it replaces the shipped one. Raises PatternError if malformed.
    """

    def __init__(self, patterns: Mapping[str, Any] | None = None) -> None:
        compiled = default_compiled() if patterns is None else compile_patterns(patterns)
        self._compiled: CompiledPatterns = compiled
        self._by_lemma, self._by_spelling, self._prefixes = term_index(compiled.terms)
        self._by_first: dict[int, list[IntentPattern]] = {}
        for pattern in compiled.patterns:
            self._by_first.setdefault(pattern.terms[0], []).append(pattern)
        self._typos = TypoIndex(_typo_forms(compiled.vocabulary()))
        self._word_terms = lru_cache(maxsize=WORD_CACHE_SIZE)(self._analyse_word)
        log.debug("compiled %d patterns, %d words", len(compiled.patterns), len(compiled.terms))

    @property
    def intents(self) -> tuple[str, ...]:
        """All intent names this classifier can return, sorted."""
        return self._compiled.intents

    def classify(self, text: str) -> Classification:
        """Intents (sorted) and order numbers (in order of appearance) of one message."""
        found: set[str] = set()
        for paragraph in paragraphs(normalise(text)):
            term_sets: list[frozenset[int]] = []
            clauses: list[int] = []
            for token in paragraph:
                for term_ids in self._word_terms(token.text):
                    term_sets.append(term_ids)
                    clauses.append(token.clause)
            found.update(self._intents_in(term_sets, clauses))
        return Classification(tuple(sorted(found)), extract_order_numbers(text))

    def _intents_in(self, term_sets: list[frozenset[int]], clauses: list[int]) -> set[str]:
        compiled = self._compiled
        positions = positions_of(term_sets)
        negations = [
            template
            for template in compiled.negations
            if all(term_id in positions for term_id in (*template.before, *template.after))
        ]
        found: set[str] = set()
        for term_id in positions:
            for pattern in self._by_first.get(term_id, ()):
                if pattern.intent in found:
                    continue
                for span in spans(positions, pattern.terms, pattern.gaps):
                    if not is_negated(span, clauses, positions, negations, compiled.negation_gap):
                        found.add(pattern.intent)
                        break
        return found

    def _analyse_word(self, word: str) -> tuple[frozenset[int], ...]:
        """Term ids accepted by a word; two entries when it hides a glued "не"."""
        parts = morph.split_glued_negation(word)
        if len(parts) == 1:
            terms = self._terms(word)
            if terms or not self._may_be_typo(word):
                return (terms,)
            corrected = self._corrected(word)
            if corrected:
                return (corrected,)
            rest = word[len(_NEGATION) :]
            if word.startswith(_NEGATION) and (corrected := self._corrected(rest)):
                return (self._terms(_NEGATION), corrected)
            return (terms,)
        return tuple(self._terms(part) for part in parts)

    def _terms(self, word: str) -> frozenset[int]:
        keys = (word, *morph.lemmas(word))
        found: set[int] = set(self._by_spelling.get(word, ()))
        for key in keys:
            found.update(self._by_lemma.get(key, ()))
        for prefix, term_id in self._prefixes:
            if any(key.startswith(prefix) for key in keys):
                found.add(term_id)
        return frozenset(found)

    def _may_be_typo(self, word: str) -> bool:
        return not word.isdigit() and not morph.is_known(word)

    def _corrected(self, word: str) -> frozenset[int]:
        key = morph.lemmas(word)[0] if not _CYRILLIC.fullmatch(word) else word
        found: set[int] = set()
        for form in self._typos.lookup(key):
            found.update(self._terms(form))
        return frozenset(found)


@cache
def default_classifier() -> Classifier:
    """The classifier with the shipped patterns, built once."""
    return Classifier()


_active: Classifier | None = None


def activate(classifier: Classifier | None) -> None:
    """Make ``classify`` use this classifier (None: the shipped patterns again)."""
    global _active
    _active = classifier


def active_classifier() -> Classifier:
    """What ``classify`` uses: the admins' dictionary once activated, else the shipped one."""
    return _active if _active is not None else default_classifier()


def classify(text: str) -> Classification:
    """Classify one message with the process's active dictionary (see classify.live)."""
    return active_classifier().classify(text)
