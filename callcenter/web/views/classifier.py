"""Administration of the classifier's pattern dictionary: edit, try unsaved, save, reset.

The form carries the whole dictionary (one textarea per intent and language, one pattern per
line), so "try it" classifies with exactly what is on the screen, saved or not. Saving goes
through ``callcenter.classify.store`` (validated, versioned, audited); every process picks the
new version up within seconds (``callcenter.classify.live``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from callcenter.classify import Classifier, PatternError
from callcenter.classify.patterns import DEFAULT_MAX_GAP, DEFAULT_NEGATION_GAP, LANGUAGES
from callcenter.classify.store import load_dictionary, reset_dictionary, save_dictionary
from callcenter.db import unit_of_work
from callcenter.models import Role
from callcenter.web.access import allow
from callcenter.web.keys import SESSIONS
from callcenter.web.render import redirect, render
from callcenter.web.session import require_user

routes = web.RouteTableDef()
PATH = "/admin/classifier"
_INTENT = "intent:"
_REMOVE = "remove:"
SAMPLE_LIMIT = 4000


def _lines(value: object) -> list[str]:
    return [line.strip() for line in str(value or "").splitlines() if line.strip()]


def _gap(value: object, default: int) -> Any:
    text = str(value or "").strip()
    return int(text) if text.isdigit() else (text or default)  # a bad value is the compiler's


def dictionary_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """The dictionary an edit form describes (validated later by the compiler).

    Fields: ``intent:<name>:<lang>`` (patterns, one a line), ``remove:<name>``, ``new_intent``
    with ``new_intent:<lang>``, ``negation:<lang>``, ``max_gap``, ``negation_gap``.
    """
    intents: dict[str, dict[str, list[str]]] = {}
    for key in form:
        if not key.startswith(_INTENT):
            continue
        name, _, language = key.removeprefix(_INTENT).rpartition(":")
        if language in LANGUAGES and f"{_REMOVE}{name}" not in form:
            intents.setdefault(name, {})[language] = _lines(form[key])
    new_name = str(form.get("new_intent", "")).strip()
    if new_name:
        table = {language: _lines(form.get(f"new_intent:{language}")) for language in LANGUAGES}
        intents[new_name] = {**intents.get(new_name, {}), **table}
    negation: dict[str, Any] = {"max_gap": _gap(form.get("negation_gap"), DEFAULT_NEGATION_GAP)}
    negation.update({language: _lines(form.get(f"negation:{language}")) for language in LANGUAGES})
    return {
        "max_gap": _gap(form.get("max_gap"), DEFAULT_MAX_GAP),
        "negation": negation,
        "intents": {
            name: {language: patterns for language, patterns in table.items() if patterns}
            for name, table in intents.items()
        },
    }


async def _page(
    request: web.Request,
    dictionary: dict[str, Any],
    *,
    version: int,
    status: int = 200,
    error: str | None = None,
    sample: str = "",
    result: Any = None,
) -> web.Response:
    context = {
        "dictionary": dictionary,
        "languages": LANGUAGES,
        "version": version,
        "error": error,
        "sample": sample,
        "result": result,
        "saved": request.query.get("saved") == "1" and error is None and result is None,
        "was_reset": request.query.get("reset") == "1",
    }
    return render(request, "admin_classifier.html", context, status=status)


async def _version(request: web.Request) -> int:
    async with request.app[SESSIONS]() as db:
        return (await load_dictionary(db))[0]


@routes.get(PATH)
@allow(Role.ADMIN)
async def classifier_page(request: web.Request) -> web.Response:
    async with request.app[SESSIONS]() as db:
        version, dictionary = await load_dictionary(db)
    return await _page(request, dictionary, version=version)


@routes.post(PATH)
@allow(Role.ADMIN)
async def edit_dictionary(request: web.Request) -> web.Response:
    """``action=try`` classifies ``sample`` with the form's dictionary; else it is saved."""
    form = await request.post()
    dictionary = dictionary_from_form(form)
    sample = str(form.get("sample", ""))[:SAMPLE_LIMIT]
    if form.get("action") == "try":
        try:
            classifier = await asyncio.to_thread(Classifier, dictionary)
        except PatternError as exc:
            version = await _version(request)
            return await _page(
                request, dictionary, version=version, status=400, error=str(exc), sample=sample
            )
        result = classifier.classify(sample)
        version = await _version(request)
        return await _page(request, dictionary, version=version, sample=sample, result=result)
    try:
        async with unit_of_work(request.app[SESSIONS]) as db:
            await save_dictionary(db, dictionary, actor=require_user(request))
    except PatternError as exc:
        version = await _version(request)
        return await _page(
            request, dictionary, version=version, status=400, error=str(exc), sample=sample
        )
    return redirect(f"{PATH}?saved=1")


@routes.post(f"{PATH}/reset")
@allow(Role.ADMIN)
async def reset(request: web.Request) -> web.Response:
    async with unit_of_work(request.app[SESSIONS]) as db:
        await reset_dictionary(db, actor=require_user(request))
    return redirect(f"{PATH}?reset=1")
