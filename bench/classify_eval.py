"""Evaluate the message classifier on the labelled set and measure its throughput.

Usage: .venv/bin/python bench/classify_eval.py [--rounds N] [--mistakes] [PATH]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from callcenter.classify import Classifier
from callcenter.classify.evaluate import evaluate, format_report, load_examples

DEFAULT_SET = Path(__file__).resolve().parent.parent / "tests" / "classify" / "eval_set.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_SET)
    parser.add_argument("--rounds", type=int, default=20, help="passes for the warm timing")
    parser.add_argument("--mistakes", action="store_true", help="list misclassified messages")
    args = parser.parse_args()

    examples = load_examples(args.path)
    texts = [example.text for example in examples]

    started = time.perf_counter()
    classifier = Classifier()
    build = time.perf_counter() - started

    started = time.perf_counter()
    for text in texts:
        classifier.classify(text)
    cold = time.perf_counter() - started

    started = time.perf_counter()
    for _ in range(args.rounds):
        for text in texts:
            classifier.classify(text)
    warm = time.perf_counter() - started

    report = evaluate(classifier, examples)
    print(format_report(report))
    print(f"classifier build (patterns, typo index): {build * 1000:.0f} ms")
    print(f"throughput, cold word cache: {len(texts) / cold:,.0f} messages/s")
    print(
        f"throughput, warm word cache: {len(texts) * args.rounds / warm:,.0f} messages/s "
        f"({len(texts) * args.rounds} messages, mean length "
        f"{sum(map(len, texts)) / len(texts):.0f} chars)"
    )
    if args.mistakes:
        for mistake in report.mistakes:
            print(
                f"- {mistake.text!r}\n  expected {list(mistake.expected.intents)} "
                f"{list(mistake.expected.order_numbers)}, got {list(mistake.got.intents)} "
                f"{list(mistake.got.order_numbers)}"
            )


if __name__ == "__main__":
    main()
