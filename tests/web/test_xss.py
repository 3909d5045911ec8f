"""Stored XSS: hostile text from every channel stays inert on every page and pushed event.

Checked in headless Chromium: no dialog opens, no request leaves 127.0.0.1, no hostile element
exists in the DOM, and the hostile text is shown literally.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.domain.customers import attach_identity, create_customer
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Direction,
    IdentityKind,
    Interaction,
    Ticket,
)
from callcenter.web.keys import HEALTH, HUB
from tests.web.seeding import T0

CORPUS = [
    '"><img src=http://evil.example/img.png onerror=alert(1)>',
    "<svg onload=alert(2)>",
    '<a href="javascript:alert(3)">жми</a>',
    '<div style="background:url(http://evil.example/css.png)">фон</div>',
    '<meta http-equiv="refresh" content="0;url=http://evil.example/meta">',
    "<script>alert(4)</script>",
    "<iframe src=http://evil.example/frame></iframe>",
    "<style>@import url(http://evil.example/x.css);</style>",
    "<link rel=stylesheet href=http://evil.example/l.css>",
    "<body onload=alert(5)>",
    "<form action=http://evil.example/f><button>Отправить</button></form>",
]
HOSTILE = " ".join(CORPUS)
# Nothing of this may exist in a page's DOM (the email iframe is ours and marked .mail).
DANGEROUS = (
    "[onerror], [onload], svg, meta[http-equiv], iframe:not(.mail), link[href*=evil], "
    "a[href^='javascript'], style, [style*=url], form[action*=evil], img[src*=evil]"
)


@pytest.fixture
async def hostile(sessions: async_sessionmaker[AsyncSession], staff) -> dict[str, int]:
    """Hostile text in a Telegram first name, an email From name, subject and HTML body,
    a caller ID name, an agent's name, a message text and a component's last error."""
    async with sessions() as db, db.begin():
        telegram = await create_customer(db, "Telegram " + HOSTILE)
        await attach_identity(db, telegram, IdentityKind.TELEGRAM, 4242, display="@" + HOSTILE)
        mail = await create_customer(db, "Email " + HOSTILE)
        await attach_identity(
            db, mail, IdentityKind.EMAIL, "evil@example.com", display=f"{HOSTILE} <evil@x>"
        )
        ticket = Ticket(customer_id=mail.id, channel=Channel.EMAIL, subject=f"Тема {HOSTILE}"[:500])
        db.add(ticket)
        await db.flush()
        caller = await create_customer(db, "Caller " + HOSTILE)
        await attach_identity(db, caller, IdentityKind.PHONE, "+79161230000")
        call = Interaction(
            customer_id=caller.id,
            channel=Channel.CALL,
            direction=Direction.INBOUND,
            text="CallerID: " + HOSTILE,
            occurred_at=T0,
        )
        db.add_all(
            [
                Interaction(
                    customer_id=mail.id,
                    ticket_id=ticket.id,
                    channel=Channel.EMAIL,
                    direction=Direction.INBOUND,
                    text="Письмо " + HOSTILE,
                    html="<p>Текст письма</p>" + HOSTILE + '<img src="https://evil.example/p">',
                    occurred_at=T0,
                ),
                Interaction(
                    customer_id=telegram.id,
                    channel=Channel.TELEGRAM,
                    direction=Direction.INBOUND,
                    text="Сообщение " + HOSTILE,
                    occurred_at=T0,
                ),
                call,
            ]
        )
        await db.flush()
        db.add(
            Call(
                interaction_id=call.id,
                linkedid="evil-1",
                queue="<svg onload=alert(6)>",
                caller_number="<img src=x onerror=alert(7)>",
                outcome=CallOutcome.ANSWERED,
            )
        )
        staff["boris"].display_name = HOSTILE[:200]
        await db.merge(staff["boris"])
    return {"telegram": telegram.id, "mail": mail.id, "caller": caller.id}


async def _check(page, watch, must_show: str) -> None:
    await asyncio.sleep(0.3)  # let any onerror/onload fire, if it could
    watch.assert_inert()
    assert await page.locator(DANGEROUS).count() == 0, page.url
    assert must_show in await page.locator("body").inner_text(), page.url


async def _sign_in(page, base: str, username: str) -> None:
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", f"password-{username}")
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def test_hostile_text_is_inert_on_every_page_and_event(
    server, browser_page, hostile, app, staff
) -> None:
    page, watch = browser_page
    base = str(server.make_url("")).rstrip("/")
    # a hostile user name is written to the audit log by the failed login
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", HOSTILE[:64])
    await page.fill("input[name=password]", "whatever-password")
    await page.click("button[type=submit]")
    await page.wait_for_load_state()
    await _check(page, watch, "Неверное имя")
    app[HEALTH].report_failure("smtp", "550 " + HOSTILE)

    await _sign_in(page, base, "root")
    await page.goto(f"{base}/agent?q=" + "onerror")
    await _check(page, watch, "Telegram " + CORPUS[0])
    assert await page.locator("#results tbody tr").count() == 3

    for customer_id in hostile.values():
        await page.goto(f"{base}/customers/{customer_id}")
        await _check(page, watch, CORPUS[1])
    frame = page.frame_locator("iframe.mail")
    await page.goto(f"{base}/customers/{hostile['mail']}")
    await frame.locator("p").first.wait_for()
    assert await frame.locator(DANGEROUS).count() == 0
    assert "Текст письма" in await frame.locator("body").inner_text()
    await _check(page, watch, "Тема " + CORPUS[0])

    for path, text in (
        ("/supervisor", CORPUS[0]),
        ("/admin/users", CORPUS[0]),
        ("/admin/audit", "user.login_failed"),
        ("/status", "550 "),
    ):
        await page.goto(base + path)
        await _check(page, watch, text)

    await page.goto(f"{base}/agent")
    await page.wait_for_selector("#pops[data-state=open]")
    app[HUB].publish_to_user(
        staff["root"].id,
        "card",
        {
            "id": "c1",
            "title": "Caller " + HOSTILE,
            "subtitle": HOSTILE,
            "fields": [[HOSTILE, HOSTILE], ["Заказ", "<img src=x onerror=alert(8)>"]],
            "customer_id": hostile["caller"],
        },
    )
    try:
        await page.wait_for_selector("article.card", state="attached", timeout=5000)
    finally:
        await asyncio.sleep(0.3)
        watch.assert_inert()  # the clearer failure when a pushed card was not inert
    await _check(page, watch, "Caller " + CORPUS[0])
    assert await page.locator("article.card a").get_attribute("href") == (
        f"/customers/{hostile['caller']}"
    )
