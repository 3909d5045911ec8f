"""Fixtures: the fake CRMs on local ports, an HTTP client, connectors pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from callcenter.crm.bitrix import Bitrix24
from callcenter.crm.zoho import ZohoCrm
from tests.browser import browser, browser_page  # noqa: F401  (fixtures)
from tests.crm.fakes import FakeBitrix24, FakeZoho, Receiver, serving
from tests.web.conftest import app, server, signed_in, staff, visitor  # noqa: F401  (fixtures)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def bitrix_server() -> AsyncIterator[tuple[FakeBitrix24, str]]:
    fake = FakeBitrix24()
    async with serving(fake.app()) as url:
        yield fake, url
        fake.release.set()


@pytest.fixture
def bitrix_fake(bitrix_server: tuple[FakeBitrix24, str]) -> FakeBitrix24:
    return bitrix_server[0]


@pytest.fixture
def bitrix(bitrix_server: tuple[FakeBitrix24, str], http: aiohttp.ClientSession) -> Bitrix24:
    return Bitrix24(http, bitrix_server[1], FakeBitrix24.USER, FakeBitrix24.CODE)


@pytest.fixture
async def zoho_server() -> AsyncIterator[tuple[FakeZoho, str]]:
    fake = FakeZoho()
    async with serving(fake.app()) as url:
        yield fake, url


@pytest.fixture
def zoho_fake(zoho_server: tuple[FakeZoho, str]) -> FakeZoho:
    return zoho_server[0]


@pytest.fixture
def zoho(zoho_server: tuple[FakeZoho, str], http: aiohttp.ClientSession) -> ZohoCrm:
    url = zoho_server[1]
    return ZohoCrm(
        http,
        accounts_url=url,
        api_url=url,
        client_id=FakeZoho.CLIENT_ID,
        client_secret=FakeZoho.CLIENT_SECRET,
        refresh_token=FakeZoho.REFRESH,
    )


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    fake = Receiver()
    async with serving(fake.app()) as url:
        yield fake, f"{url}/hook"
