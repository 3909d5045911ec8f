"""Russian and English UI text: one flat TOML catalog per language in ``locale/``.

Keys are ``area.name``; a missing translation falls back to Russian, then to the key itself,
so a forgotten string is visible but never breaks a page. A test keeps the catalogs in step.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("ru", "en")
DEFAULT = "ru"
_LOCALE = Path(__file__).with_name("locale")

Translate = Callable[..., str]


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


@cache
def catalog(lang: str) -> dict[str, str]:
    with (_LOCALE / f"{lang}.toml").open("rb") as fh:
        return _flatten(tomllib.load(fh))


def translator(lang: str) -> Translate:
    """``t("login.title")`` or ``t("login.wait", seconds=5)`` in ``lang``."""
    chosen = catalog(lang if lang in LANGUAGES else DEFAULT)
    fallback = catalog(DEFAULT)

    def t(key: str, **values: Any) -> str:
        text = chosen.get(key) or fallback.get(key) or key
        return text.format(**values) if values else text

    return t


def pick_language(accept_language: str | None, default: str = DEFAULT) -> str:
    """The supported language the browser prefers most (``Accept-Language``)."""
    best, best_q = (default if default in LANGUAGES else DEFAULT), -1.0
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        lang = tag.strip().lower().split("-")[0]
        if lang not in LANGUAGES:
            continue
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        q -= position * 1e-6  # the earlier of two equal choices wins
        if q > best_q and q > 0:
            best, best_q = lang, q
    return best
