"""The classifier against the labelled evaluation set (the same scoring as the benchmark)."""

import re
from pathlib import Path

import pytest

from callcenter.classify import Classifier
from callcenter.classify.evaluate import evaluate, format_report, load_examples

EVAL_SET = Path(__file__).parent / "eval_set.jsonl"
INTENTS = {"delivery", "invoice", "exchange", "refund", "size", "payment"}


@pytest.fixture(scope="module")
def examples():
    return load_examples(EVAL_SET)


def test_eval_set_is_large_labelled_and_mostly_russian(examples):
    assert len(examples) >= 220
    russian = sum(bool(re.search(r"[а-яё]", e.text, re.IGNORECASE)) for e in examples)
    assert russian > len(examples) / 2
    labels = {intent for e in examples for intent in e.expected.intents}
    assert labels == INTENTS
    assert any(not e.expected.intents for e in examples)
    assert all(n.isdigit() for e in examples for n in e.expected.order_numbers)


def test_classifier_meets_quality_bar(examples):
    report = evaluate(Classifier(), examples)
    summary = format_report(report)
    assert {score.intent for score in report.intents} == INTENTS, summary
    assert report.macro_f1 >= 0.9, summary
    assert report.order_accuracy >= 0.98, summary


def test_load_examples_names_the_bad_line(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"text": "ok", "intents": [], "order_numbers": []}\n{"text": 1}\n')
    with pytest.raises(ValueError, match=r"set\.jsonl:2"):
        load_examples(path)
