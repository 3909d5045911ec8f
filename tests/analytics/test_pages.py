"""The analytics pages over HTTP and in Chromium: tables, charts, CSV, escaping and access."""

from __future__ import annotations

import csv
import io
import re
from html import unescape

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.analytics.refresh import Refresher
from callcenter.models import User
from tests.analytics.dataset import HOSTILE, D, make
from tests.web.helpers import HTML

RANGE = f"from={D.isoformat()}&to={D.isoformat()}"
PAGES = [
    "/analytics",
    "/analytics/repeat",
    "/analytics/nps",
    "/analytics/transitions",
    "/analytics/audit",
]


@pytest.fixture
async def data(sessions: async_sessionmaker[AsyncSession], staff: dict[str, User]) -> None:
    async with sessions() as db, db.begin():
        await make(db, staff)
    await Refresher(sessions, "Europe/Moscow").refresh()


def _table(html: str, name: str) -> list[list[str]]:
    section = re.search(
        rf'<section class="analytics-table" id="table-{name}">(.*?)</section>', html, re.S
    )
    assert section, name
    body = re.search(r"<tbody>(.*?)</tbody>", section[1], re.S)
    assert body
    return [
        [unescape(c) for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
        for row in re.findall(r"<tr>(.*?)</tr>", body[1], re.S)
        if 'class="empty"' not in row
    ]


def _csv_link(html: str, name: str) -> str:
    found = re.search(rf'id="table-{name}">\s*<h2>.*?<a class="csv" href="([^"]+)"', html, re.S)
    assert found, name
    return unescape(found[1])


def _unquote(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:2] in "=+-@" else cell


async def test_every_page_shows_its_tables_and_each_csv_matches(signed_in, data) -> None:
    supervisor = await signed_in("sveta")
    for path in PAGES:
        response = await supervisor.get(f"{path}?{RANGE}", headers=HTML)
        assert response.status == 200, path
        html = await response.text()
        names = re.findall(r'<section class="analytics-table" id="table-([a-z_]+)">', html)
        assert names, path
        for name in names:
            shown = _table(html, name)
            download = await supervisor.get(_csv_link(html, name))
            assert download.status == 200
            assert download.headers["Content-Type"].startswith("text/csv")
            header, *lines = list(csv.reader(io.StringIO(await download.text())))
            head = html.split(f'id="table-{name}"')[1].split("</thead>")[0]
            assert header == [unescape(h) for h in re.findall(r"<th>(.*?)</th>", head)]
            assert [[_unquote(c) for c in line] for line in lines] == shown, (path, name)


async def test_the_figures_on_the_page(signed_in, data) -> None:
    supervisor = await signed_in("sveta")
    html = await (await supervisor.get(f"/analytics?{RANGE}", headers=HTML)).text()
    assert _table(html, "frt") == [
        ["Звонок", "1", "1", "0:00:30", "0:00:30"],
        ["Почта", "1", "1", "0:05:00", "0:05:00"],
        ["Telegram", "3", "3", "0:05:00", "0:04:00"],
    ]
    assert _table(html, "service")[0] == ["sales", "11:00", "2", "1", "1", "50.0%", "50.0%"]
    assert html.count('<svg class="chart"') == 5
    html = await (await supervisor.get(f"/analytics/repeat?{RANGE}", headers=HTML)).text()
    assert _table(html, "repeat_day") == [[D.isoformat(), "3", "1", "33.3%"]]
    assert 'class="goal"' in html and 'class="alarm"' in html
    assert 'class="bar alarm"' in html  # 33.3 % is over the 15 % alarm line
    english = await signed_in("root")
    await english.post_form("/me/language", {"language": "en"})
    html = await (await english.get(f"/analytics/nps?{RANGE}", headers=HTML)).text()
    assert "NPS per agent" in html
    assert _table(html, "nps_agent")[0] == ["unassigned", "1", "0", "1", "0", "0.0"]


async def test_filters_in_the_query_change_the_page(signed_in, data, staff) -> None:
    supervisor = await signed_in("sveta")
    anna = staff["anna"].id
    everyone = await (await supervisor.get(f"/analytics?{RANGE}", headers=HTML)).text()
    hers = await (await supervisor.get(f"/analytics?{RANGE}&agent={anna}", headers=HTML)).text()
    assert _table(everyone, "volume_channel") == [
        ["Звонок", "4"],
        ["Почта", "1"],
        ["Telegram", "4"],
    ]
    assert _table(hers, "volume_channel") == [["Звонок", "2"], ["Telegram", "1"]]
    assert f'<option value="{anna}" selected>' in hers
    email = await (
        await supervisor.get(f"/analytics/transitions?{RANGE}&channel=email", headers=HTML)
    ).text()
    assert _table(email, "transitions") == [["Почта", "Звонок", "1", "0"]]


async def test_a_hostile_customer_name_is_escaped_on_the_page_and_quoted_in_the_csv(
    signed_in, data
) -> None:
    supervisor = await signed_in("sveta")
    html = await (await supervisor.get(f"/analytics/audit?{RANGE}&seed=7", headers=HTML)).text()
    assert "<script>alert(2)" not in html and "<img src=x" not in html
    assert HOSTILE in [row[1] for row in _table(html, "audit")]
    body = await (await supervisor.get(_csv_link(html, "audit"))).text()
    names = {line[1] for line in csv.reader(io.StringIO(body))}
    assert "'" + HOSTILE in names and HOSTILE not in names


async def test_agents_may_not_see_analytics(signed_in, data) -> None:
    agent = await signed_in("anna")
    for path in [*PAGES, "/analytics/overview/frt.csv"]:
        response = await agent.get(f"{path}?{RANGE}", headers=HTML)
        assert response.status == 403, path
    supervisor = await signed_in("sveta")
    assert (await supervisor.get("/analytics/nowhere/frt.csv")).status == 404
    assert (await supervisor.get("/analytics/overview/nothing.csv")).status == 404


async def test_the_page_renders_with_its_charts_in_chromium(server, browser_page, data) -> None:
    page, watch = browser_page
    base = str(server.make_url("")).rstrip("/")
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", "sveta")
    await page.fill("input[name=password]", "password-sveta")
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await page.goto(f"{base}/analytics")
    await page.fill("input[name=from]", D.isoformat())
    await page.fill("input[name=to]", D.isoformat())
    await page.select_option("select[name=channel]", "telegram")
    await page.click("#analytics-filters button[type=submit]")
    await page.wait_for_load_state()
    assert "channel=telegram" in page.url
    assert await page.locator("svg.chart rect.bar").count() >= 3
    assert await page.locator("#table-volume_channel tbody tr").all_inner_texts() == ["Telegram\t4"]
    await page.click("#analytics-pages a >> text=Проверка десяти клиентов")
    await page.wait_for_load_state()
    assert "channel=telegram" in page.url
    assert await page.locator("#table-audit tbody tr").count() == 7
    await page.click("#analytics-pages a >> text=Переходы между каналами")
    await page.wait_for_load_state()
    assert await page.locator("svg.matrix rect.cell").count() == 18
    watch.assert_inert()
    assert watch.console_errors == []
