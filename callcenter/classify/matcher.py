"""Finding pattern matches in a tokenised sentence and deciding whether they are negated."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from callcenter.classify.patterns import NegationTemplate

Positions = dict[int, list[int]]  # term id -> sorted token positions accepting it


def positions_of(sentence: Sequence[frozenset[int]]) -> Positions:
    """Where each term occurs in a sentence given the term ids of each token."""
    positions: Positions = {}
    for index, term_ids in enumerate(sentence):
        for term_id in term_ids:
            positions.setdefault(term_id, []).append(index)
    return positions


def _next_at(positions: Positions, term_id: int, after: int, gap: int) -> int | None:
    """First position of term after `after` with at most `gap` words in between."""
    found = positions.get(term_id)
    if not found:
        return None
    i = bisect_right(found, after)
    if i < len(found) and found[i] <= after + 1 + gap:
        return found[i]
    return None


def _last_at(positions: Positions, term_id: int, before: int, gap: int) -> int | None:
    """Last position of term before `before` with at most `gap` words in between."""
    found = positions.get(term_id)
    if not found:
        return None
    i = bisect_right(found, before - 1) - 1
    if i >= 0 and found[i] >= before - 1 - gap:
        return found[i]
    return None


def spans(
    positions: Positions, terms: tuple[int, ...], gaps: tuple[int, ...]
) -> list[tuple[int, int]]:
    """(first, last) token positions of every match of a term sequence, one per start."""
    result = []
    for start in positions.get(terms[0], ()):
        current: int | None = start
        for term_id, gap in zip(terms[1:], gaps, strict=True):
            current = _next_at(positions, term_id, current, gap)
            if current is None:
                break
        if current is not None:
            result.append((start, current))
    return result


def is_negated(
    span: tuple[int, int],
    clauses: Sequence[int],
    positions: Positions,
    templates: Sequence[NegationTemplate],
    gap: int,
) -> bool:
    """Whether a negation template frames the match within the match's clause."""
    first, last = span
    for template in templates:
        edge: int | None = first
        for term_id in reversed(template.before):
            edge = _last_at(positions, term_id, edge, gap)
            if edge is None or clauses[edge] != clauses[first]:
                break
        else:
            edge = last
            for term_id in template.after:
                edge = _next_at(positions, term_id, edge, gap)
                if edge is None or clauses[edge] != clauses[last]:
                    break
            else:
                return True
    return False
