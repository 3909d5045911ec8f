"""Rendering the rules' message templates (Jinja2, sandboxed: admins edit them in the web UI).

Templates are keyed ``message.lang.part``: ``ack_email.ru.subject``, ``ack_email.en.html``.
Undefined variables are errors, never empty text; HTML parts escape every value, so customer
text cannot inject markup.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from callcenter.domain.errors import DomainError

PARTS = ("subject", "text", "html", "button")
KEY = re.compile(r"^[a-z][a-z0-9_]*\.[a-z]{2}\.(subject|text|html|button)$")
FALLBACK_LANGUAGE = "ru"


class TemplateError(DomainError):
    code = "template-error"


_ENVIRONMENTS = {
    html: SandboxedEnvironment(
        undefined=jinja2.StrictUndefined, autoescape=html, keep_trailing_newline=True
    )
    for html in (False, True)
}


@functools.lru_cache(maxsize=512)
def _compiled(source: str, html: bool) -> jinja2.Template:
    return _ENVIRONMENTS[html].from_string(source)


def compile_template(key: str, source: str) -> jinja2.Template:
    """The compiled template; TemplateError naming the key when the key or source is bad."""
    if not KEY.match(key):
        raise TemplateError(f"template name {key!r} must look like message.ru.text")
    try:
        return _compiled(source, key.endswith(".html"))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"template {key}: line {exc.lineno}: {exc.message}") from None


def pick_language(templates: Mapping[str, str], message: str, part: str, language: str) -> str:
    """The customer's language if the message has it, else the fallback; TemplateError if none."""
    for lang in (language, FALLBACK_LANGUAGE):
        if f"{message}.{lang}.{part}" in templates:
            return lang
    raise TemplateError(f"no template {message}.{language}.{part}")


def render(
    templates: Mapping[str, str], message: str, part: str, language: str, context: dict[str, Any]
) -> str:
    key = f"{message}.{pick_language(templates, message, part, language)}.{part}"
    try:
        return compile_template(key, templates[key]).render(context)
    except jinja2.TemplateError as exc:
        raise TemplateError(f"template {key}: {exc}") from None


def has(templates: Mapping[str, str], message: str, part: str) -> bool:
    return any(key.startswith(f"{message}.") and key.endswith(f".{part}") for key in templates)


def default_templates(name: str) -> dict[str, str]:
    """The shipped templates of a default rule, from ``templates/<name>.toml``, flattened."""
    source = resources.files(__package__).joinpath("templates", f"{name}.toml").read_text("utf-8")
    flat: dict[str, str] = {}
    for message, languages in tomllib.loads(source).items():
        for lang, parts in languages.items():
            for part, text in parts.items():
                key = f"{message}.{lang}.{part}"
                compile_template(key, text)
                flat[key] = text
    return flat
