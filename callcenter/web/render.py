"""Rendering pages: Jinja2 with autoescaping on for every template, whatever its extension."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp_jinja2
import jinja2
from aiohttp import web

from callcenter.web.i18n import pick_language, translator
from callcenter.web.keys import SETTINGS
from callcenter.web.session import csrf_token, current_user

WEB_ROOT = Path(__file__).resolve().parents[2] / "web"
TEMPLATES = WEB_ROOT / "templates"
STATIC = WEB_ROOT / "static"


def setup_templates(app: web.Application, timezone: str) -> jinja2.Environment:
    zone = ZoneInfo(timezone)

    def when(moment: datetime) -> str:
        return moment.astimezone(zone).strftime("%d.%m.%Y %H:%M:%S")

    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        filters={"when": when},
    )
    return env


def language(request: web.Request) -> str:
    user = current_user(request)
    if user is not None:
        return user.language
    return pick_language(request.headers.get("Accept-Language"), request.app[SETTINGS].language)


def render(
    request: web.Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> web.Response:
    lang = language(request)
    page = {
        "t": translator(lang),
        "lang": lang,
        "user": current_user(request),
        "csrf_token": csrf_token(request),
        "path": request.path,
        **(context or {}),
    }
    response = aiohttp_jinja2.render_template(template, request, page, status=status)
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(request: web.Request, status: int, message_key: str, **values: Any) -> web.Response:
    """A plain page saying what went wrong, in the reader's language."""
    text = translator(language(request))(message_key, **values)
    return render(request, "error.html", {"status": status, "message": text}, status=status)


def redirect(location: str, status: int = 303) -> web.Response:
    """A redirect returned (not raised), so the session cookie can be set on it."""
    return web.Response(status=status, headers={"Location": location})
