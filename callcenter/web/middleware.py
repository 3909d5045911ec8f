"""Per request: read the session cookie, find the user, enforce access and CSRF."""

from __future__ import annotations

import hmac
import logging
from urllib.parse import quote, urlsplit

from aiohttp import web
from aiohttp.web_urldispatcher import MatchInfoError, StaticResource

from callcenter.models import User
from callcenter.web.access import PUBLIC, access_of, is_csrf_exempt
from callcenter.web.cookies import COOKIE_NAME
from callcenter.web.keys import CODEC, SESSIONS
from callcenter.web.render import error_page, redirect
from callcenter.web.session import FRESH, SESSION, USER, session_data

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "_csrf"
CSRF_HEADER = "X-CSRF-Token"


async def _load_user(request: web.Request, data: dict) -> User | None:
    uid, epoch = data.get("uid"), data.get("ep")
    if not isinstance(uid, int) or not isinstance(epoch, int):
        return None
    async with request.app[SESSIONS]() as db:
        user = await db.get(User, uid)
    if user is None or not user.active or user.session_epoch != epoch:
        return None
    return user


def _unauthenticated(request: web.Request) -> web.StreamResponse:
    """Browsers asking for a page go to the login form; everything else gets 401."""
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        return redirect(f"/login?next={quote(request.path_qs, safe='')}", 302)
    return error_page(request, 401, "errors.unauthenticated")


async def _csrf_ok(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        return False
    expected = session_data(request).get("csrf")
    if not isinstance(expected, str) or not expected:
        return False
    given = request.headers.get(CSRF_HEADER, "")
    if not given and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        given = str((await request.post()).get(CSRF_FIELD, ""))
    return hmac.compare_digest(given.encode(), expected.encode())


@web.middleware
async def access_middleware(request: web.Request, handler: web.Handler) -> web.StreamResponse:
    raw = request.cookies.get(COOKIE_NAME)
    data = request.app[CODEC].decode(raw) if raw else None
    request[SESSION] = data or {}
    request[USER] = await _load_user(request, request[SESSION])

    match = request.match_info
    if isinstance(match, MatchInfoError):
        return await handler(request)
    target = match.handler
    is_static = isinstance(match.route.resource, StaticResource)
    access = PUBLIC if is_static else access_of(target)
    if access != PUBLIC:
        user = request[USER]
        if user is None:
            return _unauthenticated(request)
        if user.role not in access:
            log.info("user %s (%s) refused %s %s", user.id, user.role, request.method, request.path)
            return error_page(request, 403, "errors.forbidden")
    unsafe = request.method not in SAFE_METHODS and not is_csrf_exempt(target)
    if unsafe and not await _csrf_ok(request):
        log.info("CSRF check failed for %s %s", request.method, request.path)
        return error_page(request, 403, "errors.csrf")
    response = await handler(request)
    if request.get(FRESH) and not response.prepared:
        request.app[CODEC].save(request, response, request[SESSION])
    return response
