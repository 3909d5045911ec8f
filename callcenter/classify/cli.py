"""`callcenter classify`: one message per input line, one JSON object per output line.

Output lines look like {"intents": ["delivery"], "order_numbers": ["12345"]}; an empty input
line gives empty lists, so output line N always answers input line N.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

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


async def _run_stored(database_url: str, binary: Iterable[bytes], stdout: TextIO) -> int:
    from callcenter.classify.live import LiveDictionary
    from callcenter.db import create_engine, session_factory

    engine = create_engine(database_url)
    live = LiveDictionary(session_factory(engine), install=None)
    lines = iter(binary)
    count = 0
    warned = False
    try:
        while (raw := await asyncio.to_thread(next, lines, None)) is not None:
            try:
                await live.maybe_refresh()
            except (SQLAlchemyError, OSError) as exc:  # no database (yet): the shipped patterns
                if not warned:  # once, and the cause without the SQL statement
                    cause = str(getattr(exc, "orig", None) or exc).splitlines()[0]
                    log.warning(
                        "classifier dictionary not readable (%s), using v%d", cause, live.version
                    )
                    warned = True
            classify_lines([decode_line(raw)], stdout, live.classifier)
            count += 1
    finally:
        await engine.dispose()
    log.info("classified %d messages with dictionary v%d", count, live.version)
    return 0


def run_stored(database_url: str, stdin: TextIO, stdout: TextIO) -> int:
    """Like ``run``, with the admins' dictionary from the database, re-read when it changes
    (checked at most every few seconds, so a long-running pipe follows the admins' edits)."""
    binary = getattr(stdin, "buffer", None)
    if binary is None:
        binary = (line.encode("utf-8") for line in stdin)
    return asyncio.run(_run_stored(database_url, binary, stdout))


if __name__ == "__main__":
    sys.exit(run(sys.stdin, sys.stdout))
