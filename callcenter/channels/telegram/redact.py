"""Keeping the bot token out of logs and stored error texts.

The Bot API puts the token in every request path (``/bot<token>/method``, ``/file/bot<token>/``)
and aiohttp errors quote the URL, so any exception text may carry it.
"""

from __future__ import annotations

import logging

_MASK = "<telegram-token>"
_tokens: set[str] = set()
_installed = False


def redact(text: str) -> str:
    for token in _tokens:
        text = text.replace(token, _MASK)
    return text


def install_token_redaction(token: str) -> None:
    """Mask ``token`` in every log record created from now on, whatever the logger or handler.

    A log record factory is used rather than a filter because filters on a logger do not see
    records of its children, and handlers belong to whoever configured logging.
    """
    global _installed
    if token:
        _tokens.add(token)
    if _installed:
        return
    _installed = True
    make_record = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        if not _tokens:
            return record
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(formatted)
        return record

    logging.setLogRecordFactory(factory)
