"""The customer's side of an emailed NPS survey: ``/survey/{token}``.

The link only shows the chosen score with a button: mail scanners open every link in a message,
and the first stored answer is the one kept, so only the customer's POST records it.
"""

from __future__ import annotations

from aiohttp import web

from callcenter.automation.surveys import SurveySigner, answer_from_token
from callcenter.db import unit_of_work
from callcenter.domain.errors import DomainError
from callcenter.models import utcnow
from callcenter.web.access import public
from callcenter.web.keys import BUS, SESSIONS, SETTINGS
from callcenter.web.render import error_page, render

routes = web.RouteTableDef()
_PATH = r"/survey/{token:[0-9a-f.]{1,120}}"


def _score(request: web.Request) -> int:
    """The score a well-formed link carries; 404 for a forged or malformed one."""
    signer = SurveySigner(request.app[SETTINGS].session_key)
    try:
        _, _, score = signer.verify_token(request.match_info["token"])
    except DomainError:
        raise web.HTTPNotFound() from None
    return score


@routes.get(_PATH)
@public
async def survey_page(request: web.Request) -> web.Response:
    score = _score(request)
    return render(request, "survey.html", {"score": score, "thanks": False})


@routes.post(_PATH)
@public
async def survey_answer(request: web.Request) -> web.Response:
    score = _score(request)
    try:
        async with unit_of_work(request.app[SESSIONS]) as session:
            signer = SurveySigner(request.app[SETTINGS].session_key)
            _, event = await answer_from_token(
                session, signer, request.match_info["token"], utcnow()
            )
    except DomainError:
        return error_page(request, 404, "errors.not_found")
    if event is not None:
        request.app[BUS].publish(event)
    return render(request, "survey.html", {"score": score, "thanks": True})
