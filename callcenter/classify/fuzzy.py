"""Typo tolerance: find dictionary forms one edit away from a misspelt word.

Uses the symmetric-delete idea (as in SymSpell): every known form and every query are
indexed by the strings obtained by deleting one character, so a lookup is a handful of
dictionary probes instead of a scan, then candidates are confirmed by a real edit distance.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

MIN_LENGTH = 5  # shorter words have too many one-edit neighbours to correct safely


def _deletes(word: str) -> set[str]:
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def within_one_edit(a: str, b: str) -> bool:
    """True when a and b differ by at most one insertion, deletion, substitution or swap."""
    if a == b:
        return True
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diff) == 1:
            return True
        if len(diff) != 2:
            return False
        i, j = diff
        return j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


class TypoIndex:
    """Maps misspelt words to the vocabulary words they were probably meant as."""

    def __init__(self, words: Iterable[str]) -> None:
        """words: every spelling worth correcting to (inflected forms included)."""
        self._index: dict[str, set[str]] = defaultdict(set)
        for word in words:
            if len(word) >= MIN_LENGTH:
                for key in _deletes(word):
                    self._index[key].add(word)

    def lookup(self, word: str) -> frozenset[str]:
        """Vocabulary words within one edit of word (empty if none)."""
        if len(word) < MIN_LENGTH:
            return frozenset()
        found = set()
        for key in _deletes(word):
            found.update(w for w in self._index.get(key, ()) if within_one_edit(word, w))
        return frozenset(found)
