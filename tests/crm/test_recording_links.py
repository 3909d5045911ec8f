"""Signed recording links: the CRM downloads a call's recording without a login while the link
is valid; an altered, foreign or expired link is refused like a missing recording."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.crm.links import RecordingLinks
from callcenter.models import Call, CallOutcome, utcnow
from callcenter.web.keys import SETTINGS
from tests.automation.helpers import Clock, make_call, make_customer
from tests.web.conftest import SESSION_KEY
from tests.web.helpers import Visitor


def test_a_link_is_valid_for_its_recording_until_it_expires() -> None:
    clock = Clock(utcnow())
    links = RecordingLinks("https://help.example.ru/", SESSION_KEY, now=clock)
    url = urlsplit(links.url(31))
    assert (url.scheme, url.netloc, url.path) == ("https", "help.example.ru", "/recordings/31")
    query = dict(parse_qsl(url.query))
    assert links.valid(31, query["expires"], query["signature"])
    assert not links.valid(32, query["expires"], query["signature"])
    assert not links.valid(31, str(int(query["expires"]) + 1), query["signature"])
    signature = query["signature"]
    tampered = signature[:-1] + ("1" if signature[-1] == "0" else "0")
    assert not links.valid(31, query["expires"], tampered)
    assert not links.valid(31, "soon", query["signature"])
    other = RecordingLinks("https://help.example.ru", "another-session-key", now=clock)
    assert not other.valid(31, query["expires"], query["signature"])
    clock.advance(days=7, seconds=1)
    assert not links.valid(31, query["expires"], query["signature"])


async def test_the_crm_downloads_a_recording_by_its_link_without_a_login(
    server: TestServer,
    sessions: async_sessionmaker[AsyncSession],
    visitor: Callable[[], Visitor],
) -> None:
    data_dir = server.app[SETTINGS].data_dir
    (data_dir / "recordings").mkdir(exist_ok=True)
    (data_dir / "recordings" / "call-1.wav").write_bytes(b"RIFF-test-audio")
    customer = await make_customer(sessions, phone="+79161234567")
    call, _ = await make_call(sessions, customer, outcome=CallOutcome.ANSWERED)
    other, _ = await make_call(
        sessions, customer, outcome=CallOutcome.ANSWERED, caller="+79160000000"
    )
    async with sessions() as db, db.begin():
        (await db.get(Call, call)).recording_path = "call-1.wav"
        (await db.get(Call, other)).recording_path = "call-1.wav"
    crm = visitor()  # no session: the CRM's server fetching the file

    def path(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}"

    links = RecordingLinks("https://help.example.ru", SESSION_KEY)
    got = await crm.get(path(links.url(call)))
    assert (got.status, await got.read()) == (200, b"RIFF-test-audio")

    query = dict(parse_qsl(urlsplit(links.url(call)).query))
    refused = [
        f"/recordings/{other}?{urlencode(query)}",  # another call's recording
        f"/recordings/{call}?{urlencode({**query, 'expires': int(query['expires']) + 60})}",
        f"/recordings/{call}?expires={query['expires']}",
        f"/recordings/{call}",
        path(RecordingLinks("", "a-forger's-key-0123456789").url(call)),
        path(RecordingLinks("", SESSION_KEY, lifetime=timedelta(seconds=-1)).url(call)),
        f"/calls/{call}/recording?{urlencode(query)}",  # the agents' route still needs a login
    ]
    for forged in refused:
        answer = await crm.get(forged, allow_redirects=False)
        assert answer.status in (401, 404) and b"RIFF" not in await answer.read(), forged
