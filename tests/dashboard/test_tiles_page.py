"""The omnichannel tiles and the thresholds on the supervisor's page in headless Chromium: shown
as pushed, alarms coloured by the settings' thresholds."""

from __future__ import annotations

from datetime import timedelta

from playwright.async_api import expect

from callcenter.dashboard.backlog import Backlog, RepeatRate, Waiting
from callcenter.dashboard.board import Policy
from tests.browser import browser as browser  # the fixtures
from tests.browser import browser_page as browser_page
from tests.web.conftest import staff as staff
from tests.web.test_wallboard import NOW, Live, sign_in
from tests.web.test_wallboard import live as live  # the fixture


async def test_the_tiles_show_what_waits_with_alarms_from_the_settings(
    live: Live, browser_page
) -> None:
    live.wallboard.policy = Policy(
        service_level_target=90, long_wait_seconds=45, repeat_contact_goal=3,
        repeat_contact_alarm=10, answer_promise_minutes=60,
    )  # fmt: skip
    page, seen = browser_page
    await sign_in(page, live.base, "sveta")
    await page.wait_for_selector("#wallboard[data-state=open]")
    policy = await page.locator("#wb-policy").inner_text()
    assert "Цель по уровню обслуживания — 90 %" in policy
    assert "ожидающий 0:45 и дольше" in policy
    assert "обещан в течение 60 мин" in policy
    assert "цель — до 3 %, тревога — выше 10 %" in policy
    tiles = page.locator("#wb-tiles")
    assert await tiles.locator(".wb-tile[data-tile=telegram] .t-value").inner_text() == "—"

    live.wallboard.set_backlog(
        Backlog(
            telegram=Waiting(3, NOW - timedelta(minutes=75)),
            email=Waiting(0, None),
            breaching=Waiting(1, NOW - timedelta(minutes=75)),
            callbacks=Waiting(2, NOW - timedelta(seconds=30)),
            repeat=RepeatRate(1, 8),
        )
    )
    assert live.wallboard.publish() == 1
    telegram = tiles.locator(".wb-tile[data-tile=telegram]")
    await expect(telegram.locator(".t-value")).to_have_text("3")
    assert await telegram.locator(".t-detail").inner_text() == "дольше всех: 1:15:00"
    assert await telegram.get_attribute("class") == "wb-tile"
    email = tiles.locator(".wb-tile[data-tile=email]")
    assert (
        await email.locator(".t-value").inner_text(),
        await email.locator(".t-detail").inner_text(),
    ) == ("0", "")
    breaching = tiles.locator(".wb-tile[data-tile=breaching]")
    assert await breaching.locator(".t-value").inner_text() == "1"
    assert await breaching.get_attribute("class") == "wb-tile alarm"
    callbacks = tiles.locator(".wb-tile[data-tile=callbacks]")
    assert await callbacks.locator(".t-detail").inner_text() == "дольше всех: 0:30"
    repeat = tiles.locator(".wb-tile[data-tile=repeat]")
    assert await repeat.locator(".t-value").inner_text() == "12,5 %"
    assert await repeat.locator(".t-detail").inner_text() == "1 из 8 решённых за 7 дней"
    assert await repeat.get_attribute("class") == "wb-tile over-goal alarm"

    # Under the alarm but over the goal: amber, not red.
    live.wallboard.set_backlog(
        Backlog(Waiting(), Waiting(), Waiting(), Waiting(), RepeatRate(1, 20))
    )
    live.wallboard.publish()
    await expect(repeat.locator(".t-value")).to_have_text("5 %")
    assert await repeat.get_attribute("class") == "wb-tile over-goal"
    assert await breaching.get_attribute("class") == "wb-tile"
    seen.assert_inert()
