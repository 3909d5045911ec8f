"""Who may call a route: every handler declares it, and undeclared handlers are admin-only.

``@public`` (no session needed), ``@allow(Role...)`` (a signed-in user with one of the roles),
``@csrf_exempt`` (for machine callers that authenticate otherwise, like the Telegram webhook).
Token routes are ``@public`` routes whose URL carries an HMAC the handler checks in constant
time, answering 404 to a forged or expired one: survey answers, shared call recordings
(``/recordings/<id>``); tests/web/test_access.py lists them in TOKEN_ROUTES.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from callcenter.models import Role

H = TypeVar("H", bound=Callable[..., Any])

_ACCESS = "__callcenter_access__"
_CSRF_EXEMPT = "__callcenter_csrf_exempt__"
PUBLIC = "public"

EVERYONE = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN)
SUPERVISORS = (Role.SUPERVISOR, Role.ADMIN)
ADMINS = (Role.ADMIN,)


def public(handler: H) -> H:
    setattr(handler, _ACCESS, PUBLIC)
    return handler


def allow(*roles: Role) -> Callable[[H], H]:
    def mark(handler: H) -> H:
        setattr(handler, _ACCESS, frozenset(roles))
        return handler

    return mark


def csrf_exempt(handler: H) -> H:
    setattr(handler, _CSRF_EXEMPT, True)
    return handler


def declared_access(handler: Any) -> str | frozenset[Role] | None:
    """The handler's declaration, or None when it has none."""
    return getattr(handler, _ACCESS, None)


def access_of(handler: Any) -> str | frozenset[Role]:
    """What the middleware enforces: undeclared handlers fail closed to admins."""
    return declared_access(handler) or frozenset(ADMINS)


def is_csrf_exempt(handler: Any) -> bool:
    return bool(getattr(handler, _CSRF_EXEMPT, False))
