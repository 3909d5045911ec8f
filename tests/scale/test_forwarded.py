"""X-Forwarded-For and X-Forwarded-Proto count only when the peer is a trusted proxy: then
the login rate limiter (by address) and the audit log see the browser's address and the
session cookie is Secure; from anyone else the headers change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.config import ConfigError, Settings
from callcenter.health import HealthRegistry
from callcenter.models import AuditLog, Role, User
from callcenter.passwords import hash_password
from callcenter.web.app import create_app
from callcenter.web.proxies import trusted_networks
from callcenter.web.ratelimit import LoginLimiter
from tests.web.helpers import Visitor

SESSION_KEY = "forwarded-test-session-key-" + "y" * 32
BROWSER = "203.0.113.7"
OTHER_BROWSER = "203.0.113.8"

Serve = Callable[[str], Awaitable[TestServer]]


@pytest.fixture
async def serve(
    database_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path
) -> AsyncIterator[Serve]:
    async with sessions() as db, db.begin():
        db.add(User(username="anna", role=Role.AGENT, password_hash=hash_password("password-anna")))
    servers: list[TestServer] = []

    async def start(trusted: str) -> TestServer:
        settings = Settings(
            database_url=database_url,
            session_key=SESSION_KEY,
            data_dir=tmp_path,
            trusted_proxies=trusted,
        )
        limiter = LoginLimiter(account_limit=100, address_limit=3)
        app = create_app(settings, health=HealthRegistry(), limiter=limiter)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


async def login(server: TestServer, password: str, forwarded_for: str, proto: str = "http"):
    visitor = Visitor(server.make_url("/"))
    try:
        await visitor.refresh_csrf("/login")
        return await visitor.post(
            "/login",
            data={"username": "anna", "password": password, "_csrf": visitor.csrf},
            headers={"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": proto},
        )
    finally:
        await visitor.close()


async def addresses(sessions: async_sessionmaker[AsyncSession], action: str) -> list[str]:
    async with sessions() as db:
        rows = await db.scalars(select(AuditLog).where(AuditLog.action == action))
        return [row.details["address"] for row in rows]


async def test_behind_a_trusted_proxy_the_browsers_address_and_scheme_count(
    serve: Serve, sessions: async_sessionmaker[AsyncSession]
) -> None:
    server = await serve("10.0.0.0/8, 127.0.0.1")
    # The browser, then an inner proxy (trusted, skipped), then the peer 127.0.0.1 (trusted).
    for _ in range(3):
        response = await login(server, "wrong", f"{BROWSER}, 10.1.2.3")
        assert response.status == 401
    assert await addresses(sessions, "user.login_failed") == [BROWSER] * 3

    assert (await login(server, "password-anna", f"{BROWSER}, 10.1.2.3")).status == 429
    response = await login(server, "password-anna", OTHER_BROWSER, proto="https")
    assert response.status == 303
    assert await addresses(sessions, "user.login") == [OTHER_BROWSER]
    assert "Secure" in response.headers["Set-Cookie"]


async def test_from_an_untrusted_peer_the_headers_are_ignored(
    serve: Serve, sessions: async_sessionmaker[AsyncSession]
) -> None:
    server = await serve("10.0.0.0/8")  # the test client's 127.0.0.1 is not a trusted proxy
    response = await login(server, "password-anna", OTHER_BROWSER, proto="https")
    assert response.status == 303
    assert "Secure" not in response.headers["Set-Cookie"]
    # A client forging a fresh address per attempt still counts as itself.
    for n in range(3):
        assert (await login(server, "wrong", f"198.51.100.{n}")).status == 401
    assert (await login(server, "password-anna", OTHER_BROWSER)).status == 429
    assert await addresses(sessions, "user.login_failed") == ["127.0.0.1"] * 3
    assert await addresses(sessions, "user.login") == ["127.0.0.1"]


def test_a_malformed_trusted_proxy_setting_is_refused_at_start() -> None:
    assert [str(n) for n in trusted_networks(" 10.0.0.0/8 ,::1")] == ["10.0.0.0/8", "::1/128"]
    with pytest.raises(ConfigError, match="trusted_proxies"):
        trusted_networks("10.0.0.0/8, caddy")
