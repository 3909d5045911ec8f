"""The whole product (``serve``) in the test process, connected to the test Asterisk, its staff,
and a signed-in browser page: shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, Page
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter import health
from callcenter.channels.telephony.pbxconfig import free_port
from callcenter.config import Settings
from callcenter.models import Role, User
from callcenter.passwords import hash_password
from callcenter.serve import serve
from tests.browser import PageWatch, watch
from tests.telephony.conftest import Pbx


async def add_staff(
    sessions: async_sessionmaker[AsyncSession],
    name: str,
    role: Role,
    endpoint: str | None = None,
    *,
    signs_in: bool = True,
) -> int:
    """Add user `name` (shown as `Name`) at SIP `endpoint`; returns the user id. The password is
    ``password-<name>``, as `signed_in` and the web tests' `Visitor.login` expect; without
    `signs_in` there is none (hashing costs time when a load test adds many agents)."""
    password_hash = hash_password(f"password-{name}") if signs_in else "!"
    user = User(
        username=name,
        display_name=name.title(),
        role=role,
        password_hash=password_hash,
        sip_endpoint=endpoint,
    )
    async with sessions() as session, session.begin():
        session.add(user)
        await session.flush()
        return user.id


async def healthy(base: str) -> bool:
    """Whether a web process at `base` answers its health check (200 from /healthz)."""
    try:
        async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


def _ami_ok() -> bool:
    ami = next(c for c in health.registry.snapshot() if c.name == "ami")
    return ami.state is health.State.OK


@asynccontextmanager
async def running_product(
    database_url: str, pbx: Pbx, data_dir: Path, **overrides: Any
) -> AsyncIterator[str]:
    """Serve on a free port until the block ends; yields the base URL once AMI is in sync.
    `overrides` are further settings (e.g. the FastAGI port the test's dialplan calls)."""
    port = free_port()
    pbx_settings = pbx.process.settings
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        web_port=port,
        ami_port=pbx_settings.ami_port,
        ami_user=pbx_settings.ami_username,
        ami_password=pbx_settings.ami_secret,
        session_key="e2e-session-key-" + "x" * 32,
        **overrides,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, "127.0.0.1", port, stop))
    base = f"http://127.0.0.1:{port}"
    try:
        async with asyncio.timeout(30):
            while not await healthy(base) or not _ami_ok():
                assert not task.done(), task
                await asyncio.sleep(0.2)
        yield base
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def signed_in(
    browser: Browser, base: str, username: str, landing: str
) -> tuple[Page, PageWatch]:
    """A fresh browser context signed in as ``username`` (password ``password-<username>``)."""
    context = await browser.new_context(locale="ru-RU")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    seen = await watch(page)
    await page.goto(base + "/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", f"password-{username}")
    await page.click("button[type=submit]")
    await page.wait_for_url(base + landing)
    return page, seen
