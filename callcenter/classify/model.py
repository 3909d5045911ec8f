"""Value types shared by the classifier modules."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Classification:
    """What a customer message is about.

    intents: intent names, sorted; empty when the message asks for nothing we route.
    order_numbers: order numbers as digit strings, in order of appearance, without repeats.
    """

    intents: tuple[str, ...] = ()
    order_numbers: tuple[str, ...] = ()


class PatternError(ValueError):
    """A pattern dictionary is malformed; the message names the offending entry."""
