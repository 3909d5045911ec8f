"""Who may reach which route: anonymous visitors, agents, CSRF."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.web_urldispatcher import StaticResource

from callcenter.models import User
from callcenter.web.access import PUBLIC, declared_access
from tests.web.helpers import HTML

PUBLIC_ROUTES = {("GET", "/login"), ("POST", "/login"), ("GET", "/healthz")}
# Public to the session layer but closed by a token of their own (tests/web/test_metrics.py,
# tests/web/test_survey.py show what they answer without it).
TOKEN_ROUTES = {
    ("GET", "/metrics"),
    ("GET", "/survey/1"),  # a customer's signed link; a forged token is a 404
    ("POST", "/survey/1"),
    ("GET", "/recordings/1"),  # a signed link that expires; a forged or late one is a 404
}
TELEGRAM_WEBHOOK = re.compile(r"^/telegram/")
SUPERVISOR_ONLY = [
    "/supervisor",
    "/analytics",
    "/analytics/repeat",
    "/analytics/nps",
    "/analytics/transitions",
    "/analytics/audit",
    "/analytics/overview/frt.csv",
]
ADMIN_ONLY = ["/admin/users", "/admin/audit", "/admin/webhooks", "/admin/classifier", "/status"]


def _routes(app: web.Application) -> list[tuple[str, str, object]]:
    """(method, a concrete path, handler) for every route except static files and HEAD."""
    found = []
    for route in app.router.routes():
        if isinstance(route.resource, StaticResource) or route.method == "HEAD":
            continue
        info = route.resource.get_info()
        path = info.get("path") or re.sub(r"\{[^}]+\}", "1", info["formatter"])
        found.append((route.method, path, route.handler))
    return found


def _sweepable(app: web.Application) -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, _ in _routes(app)
        if (method, path) not in PUBLIC_ROUTES | TOKEN_ROUTES and not TELEGRAM_WEBHOOK.match(path)
    ]


async def test_every_route_declares_who_may_call_it(app: web.Application) -> None:
    undeclared = [(m, p) for m, p, h in _routes(app) if declared_access(h) is None]
    assert undeclared == []
    public = {(m, p) for m, p, h in _routes(app) if declared_access(h) == PUBLIC}
    assert {r for r in public if not TELEGRAM_WEBHOOK.match(r[1])} == PUBLIC_ROUTES | TOKEN_ROUTES


async def test_without_a_session_every_route_answers_401_or_goes_to_login(app, visitor) -> None:
    anonymous = visitor()
    swept = _sweepable(app)
    assert len(swept) >= 15
    for method, path in swept:
        for headers in ({}, HTML):
            response = await anonymous.http.request(
                method, anonymous.url(path), headers=headers, allow_redirects=False
            )
            if response.status in (302, 303):
                assert response.headers["Location"].startswith("/login?next="), (method, path)
            else:
                assert response.status == 401, (method, path, response.status)


async def test_a_forged_cookie_is_no_session(visitor, staff) -> None:
    anonymous = visitor()
    anonymous.http.cookie_jar.update_cookies(
        {"cc_session": "gAAAAABnotavalidtoken"}, anonymous.base
    )
    assert (await anonymous.get("/agent")).status == 401


async def test_a_post_without_a_csrf_token_is_refused(app, signed_in, staff) -> None:
    admin = await signed_in("root")
    posts = [(m, p) for m, p in _sweepable(app) if m == "POST"]
    assert len(posts) >= 6
    for method, path in posts:
        response = await admin.post(path, data={"active": "0", "confirm": "1"})
        assert response.status == 403, (method, path)
        assert "Обновите страницу" in await response.text()
    # the refused requests changed nothing: the admin is still signed in
    assert (await admin.get("/admin/users")).status == 200


async def test_a_csrf_token_from_another_session_or_origin_is_refused(
    signed_in, staff: dict[str, User]
) -> None:
    admin = await signed_in("root")
    other = await signed_in("sveta")
    stolen = await admin.post(
        f"/admin/users/{staff['anna'].id}/active", data={"active": "0", "_csrf": other.csrf}
    )
    assert stolen.status == 403
    cross_site = await admin.post(
        f"/admin/users/{staff['anna'].id}/active",
        data={"active": "0", "_csrf": admin.csrf},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status == 403
    good = await admin.post_form(f"/admin/users/{staff['anna'].id}/active", {"active": "0"})
    assert good.status == 303


async def test_an_agent_cannot_reach_supervisor_or_admin_routes(signed_in, staff) -> None:
    agent = await signed_in("anna")
    for path in SUPERVISOR_ONLY + ADMIN_ONLY:
        response = await agent.get(path, headers=HTML)
        assert response.status == 403, path
        assert "нет доступа" in await response.text()
    erase = await agent.post_form("/customers/1/erase", {"confirm": "1"})
    assert erase.status == 403
    assert (await agent.get("/customers/1/export.json")).status == 403
    deactivate = await agent.post_form(f"/admin/users/{staff['boris'].id}/active", {"active": "0"})
    assert deactivate.status == 403


async def test_a_supervisor_is_kept_out_of_admin_routes(signed_in) -> None:
    supervisor = await signed_in("sveta")
    assert (await supervisor.get("/supervisor")).status == 200
    for path in ADMIN_ONLY:
        assert (await supervisor.get(path)).status == 403, path


async def test_an_agent_cannot_open_another_agents_stream(signed_in, staff) -> None:
    agent = await signed_in("anna")
    response = await agent.get(f"/events/users/{staff['boris'].id}")
    assert response.status == 403
    supervisor = await signed_in("sveta")
    listening = await supervisor.get(f"/events/users/{staff['boris'].id}")
    assert listening.status == 200
    assert listening.headers["Content-Type"].startswith("text/event-stream")
    listening.close()
