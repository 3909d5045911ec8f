"""The request's session payload and signed-in user.

The cookie holds ``uid`` and ``ep`` (the user's session epoch when they signed in) and ``csrf``.
Raising ``User.session_epoch`` ("log out everywhere", deactivation) invalidates every cookie
issued before, wherever it is.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from callcenter.models import User

SESSION = web.RequestKey("callcenter.session", dict)
USER = web.RequestKey("callcenter.user", User)
FRESH = web.RequestKey("callcenter.fresh_session", bool)


def session_data(request: web.Request) -> dict[str, Any]:
    return request.get(SESSION) or {}


def current_user(request: web.Request) -> User | None:
    return request.get(USER)


def require_user(request: web.Request) -> User:
    user = current_user(request)
    if user is None:  # the access middleware guarantees a user on non-public routes
        raise web.HTTPUnauthorized()
    return user


def csrf_token(request: web.Request) -> str:
    """The session's CSRF token; a visitor without one gets a new session on this response."""
    data = session_data(request)
    token = data.get("csrf")
    if not isinstance(token, str) or not token:
        data = {**data, "csrf": secrets.token_urlsafe(32)}
        request[SESSION] = data
        request[FRESH] = True
        token = data["csrf"]
    return token


def signed_in(user: User) -> dict[str, Any]:
    """A fresh payload for a user who just proved their password (new CSRF token too)."""
    return {"uid": user.id, "ep": user.session_epoch, "csrf": secrets.token_urlsafe(32)}
