"""`callcenter classify`: one message per input line, one JSON object per output line.

Output lines look like {"intents": ["delivery"], "order_numbers": ["12345"]}; an empty input
line gives empty lists, so output line N always answers input line N.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

from callcenter.classify.classifier import Classifier, default_classifier

log = logging.getLogger(__name__)

_LEGACY_RUSSIAN = ("cp1251", "koi8_r")


def decode_line(raw: bytes) -> str:
    """Decode one input line: UTF-8, else whichever of cp1251/KOI8-R reads as Russian.

    In the wrong one of the two legacy code pages Russian letters come out mostly in capitals,
    so the decoding with more lower-case Cyrillic wins. Nothing ever raises.
    """
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass

    def lower_cyrillic(text: str) -> int:
        return sum("а" <= char <= "я" or char == "ё" for char in text)

    candidates = [raw.decode(encoding, errors="replace") for encoding in _LEGACY_RUSSIAN]
    return max(candidates, key=lower_cyrillic)


def _lines(binary: Iterable[bytes]) -> Iterator[str]:
    for raw in binary:
        yield decode_line(raw)


def classify_lines(lines: Iterable[str], stdout: TextIO, classifier: Classifier) -> int:
    """Write one JSON result per line of lines; returns the number of lines handled."""
    count = 0
    for line in lines:
        text = line.rstrip("\r\n")
        result = classifier.classify(text)
        record = {"intents": list(result.intents), "order_numbers": list(result.order_numbers)}
        stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        stdout.flush()
        count += 1
    return count


def run(stdin: TextIO, stdout: TextIO) -> int:
    """Classify every line of stdin onto stdout; returns the exit status (0).

    A real stream (one with a byte buffer, like sys.stdin) is read as bytes and decoded line by
    line with decode_line, so cp1251/KOI8-R or broken bytes cannot stop the run.
    """
    binary = getattr(stdin, "buffer", None)
    lines = _lines(binary) if binary is not None else stdin
    count = classify_lines(lines, stdout, default_classifier())
    log.info("classified %d messages", count)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.stdin, sys.stdout))
