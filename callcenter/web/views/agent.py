"""The agent's workspace: the screen-pop panel and customer search."""

from __future__ import annotations

from aiohttp import web

from callcenter.web.access import EVERYONE, allow
from callcenter.web.i18n import catalog
from callcenter.web.keys import SESSIONS, SETTINGS
from callcenter.web.render import language, redirect, render
from callcenter.web.search import MAX_QUERY, search_customers
from callcenter.web.session import require_user
from callcenter.web.views.auth import HOME
from callcenter.web.views.workspace import workspace_context

routes = web.RouteTableDef()


@routes.get("/")
@allow(*EVERYONE)
async def index(request: web.Request) -> web.Response:
    return redirect(HOME[require_user(request).role], 302)


@routes.get("/agent")
@allow(*EVERYONE)
async def agent_home(request: web.Request) -> web.Response:
    query = request.query.get("q", "")[:MAX_QUERY]
    hits = []
    async with request.app[SESSIONS]() as db:
        if query.strip():
            hits = await search_customers(db, query, request.app[SETTINGS].default_region)
        workspace = await workspace_context(request, db, require_user(request))
    context = {"query": query, "hits": hits, "labels": _pop_labels(request)}
    return render(request, "agent.html", {**context, **workspace})


def _pop_labels(request: web.Request) -> dict[str, str]:
    """The texts the screen-pop script needs, in the agent's language."""
    texts = catalog(language(request))
    prefixes = ("pop.", "channel.", "kind.", "direction.", "ticket.", "agent.sound")
    return {key: value for key, value in texts.items() if key.startswith(prefixes)}
