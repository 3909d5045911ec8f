"""Scoring a classifier against a labelled set (shared by the benchmark and the tests).

The set is JSON Lines, one {"text": str, "intents": [str], "order_numbers": [str]} per line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from callcenter.classify.classifier import Classifier
from callcenter.classify.model import Classification


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    expected: Classification


@dataclass(frozen=True, slots=True)
class IntentScore:
    intent: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else float(not self.false_negatives)

    @property
    def recall(self) -> float:
        actual = self.true_positives + self.false_negatives
        return self.true_positives / actual if actual else float(not self.false_positives)

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Mistake:
    text: str
    expected: Classification
    got: Classification


@dataclass(frozen=True, slots=True)
class Report:
    intents: tuple[IntentScore, ...]
    order_accuracy: float
    messages: int
    mistakes: tuple[Mistake, ...]

    @property
    def macro_f1(self) -> float:
        return sum(score.f1 for score in self.intents) / len(self.intents)


def _string_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where}: expected a list of strings")
    return tuple(value)


def load_examples(path: Path) -> list[Example]:
    """Read a labelled set; a malformed line raises ValueError naming the line."""
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(f"{where}: not JSON: {error}") from error
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                raise ValueError(f"{where}: expected an object with a string 'text'")
            intents = _string_list(record.get("intents"), f"{where} intents")
            orders = _string_list(record.get("order_numbers"), f"{where} order_numbers")
            examples.append(Example(record["text"], Classification(tuple(sorted(intents)), orders)))
    return examples


def evaluate(classifier: Classifier, examples: Iterable[Example]) -> Report:
    """Per-intent precision/recall/F1 and exact-match order-number accuracy."""
    examples = list(examples)
    counts = {intent: [0, 0, 0] for intent in classifier.intents}
    orders_right = 0
    mistakes = []
    for example in examples:
        got = classifier.classify(example.text)
        expected = set(example.expected.intents)
        predicted = set(got.intents)
        for intent in expected | predicted:
            tally = counts.setdefault(intent, [0, 0, 0])  # true pos., false pos., false neg.
            if intent in expected and intent in predicted:
                tally[0] += 1
            elif intent in predicted:
                tally[1] += 1
            else:
                tally[2] += 1
        orders_right += got.order_numbers == example.expected.order_numbers
        if got != example.expected:
            mistakes.append(Mistake(example.text, example.expected, got))
    scores = tuple(IntentScore(intent, *counts[intent]) for intent in sorted(counts))
    accuracy = orders_right / len(examples) if examples else 1.0
    return Report(scores, accuracy, len(examples), tuple(mistakes))


def format_report(report: Report) -> str:
    """A plain-text table of the figures."""
    lines = [f"{'intent':<10} {'precision':>9} {'recall':>7} {'f1':>6}  tp  fp  fn"]
    for s in report.intents:
        lines.append(
            f"{s.intent:<10} {s.precision:>9.3f} {s.recall:>7.3f} {s.f1:>6.3f} "
            f"{s.true_positives:>3} {s.false_positives:>3} {s.false_negatives:>3}"
        )
    lines.append(f"macro F1: {report.macro_f1:.3f}")
    lines.append(f"order-number accuracy: {report.order_accuracy:.3f} ({report.messages} messages)")
    return "\n".join(lines)
