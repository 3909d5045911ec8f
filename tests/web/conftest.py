"""Fixtures for the web tests: a running app on 127.0.0.1, staff accounts, visitors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from functools import cache
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import Settings
from callcenter.health import HealthRegistry
from callcenter.models import Role, User
from callcenter.web.app import create_app
from tests.browser import browser, browser_page  # noqa: F401  (fixtures)
from tests.web.helpers import Visitor

SESSION_KEY = "test-only-session-key-0123456789abcdefghijklmnop"
STAFF = {
    "anna": (Role.AGENT, "PJSIP/1001"),
    "boris": (Role.AGENT, "PJSIP/1002"),
    "sveta": (Role.SUPERVISOR, None),
    "root": (Role.ADMIN, None),
}


# Verification cost follows the parameters stored in the hash: cheap ones keep the many test
# logins fast while the code under test is the production verify path.
_CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@cache
def _hash(password: str) -> str:
    return _CHEAP.hash(password)


@pytest.fixture
async def staff(sessions: async_sessionmaker[AsyncSession]) -> dict[str, User]:
    """Two agents, a supervisor and an admin; each one's password is ``password-<name>``."""
    async with sessions() as db, db.begin():
        users = {
            name: User(
                username=name,
                display_name=name.title(),
                role=role,
                sip_endpoint=endpoint,
                password_hash=_hash(f"password-{name}"),
                language="ru",
            )
            for name, (role, endpoint) in STAFF.items()
        }
        db.add_all(users.values())
    return users


@pytest.fixture
async def server(
    database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[TestServer]:
    settings = Settings(database_url=database_url, session_key=SESSION_KEY, data_dir=tmp_path)
    app = create_app(settings, health=HealthRegistry())
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    try:
        yield test_server
    finally:
        await test_server.close()


@pytest.fixture
def app(server: TestServer) -> web.Application:
    return server.app


@pytest.fixture
async def visitor(server: TestServer) -> AsyncIterator[Callable[[], Visitor]]:
    """Make as many independent visitors (browsers) as a test needs."""
    made: list[Visitor] = []

    def make() -> Visitor:
        made.append(Visitor(server.make_url("/")))
        return made[-1]

    yield make
    for one in made:
        await one.close()


@pytest.fixture
def signed_in(
    visitor: Callable[[], Visitor], staff: dict[str, User]
) -> Callable[[str], Awaitable[Visitor]]:
    async def sign_in(name: str) -> Visitor:
        who = visitor()
        response = await who.login(name)
        assert response.status == 303, await response.text()
        return who

    return sign_in
