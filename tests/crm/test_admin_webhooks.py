"""The admin's webhook page (subscriptions and delivery log) and the CRM fields on the agent's
screen-pop, hostile text inert in Chromium."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.crm.models import WebhookDelivery, WebhookSubscription
from callcenter.models import AuditLog, Outbox, OutboxStatus
from callcenter.web.keys import HEALTH, HUB
from tests.web.helpers import HTML
from tests.web.test_xss import DANGEROUS, HOSTILE, _check, _sign_in


async def subscriptions(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookSubscription]:
    async with sessions() as session:
        return list(await session.scalars(select(WebhookSubscription)))


async def test_only_admins_see_and_change_subscriptions(signed_in, sessions) -> None:  # type: ignore[no-untyped-def]
    agent = await signed_in("anna")
    assert (await agent.get("/admin/webhooks", headers=HTML)).status == 403
    await agent.refresh_csrf("/agent")
    refused = await agent.post_form(
        "/admin/webhooks", {"url": "https://evil.example/", "events": "ticket.created"}
    )
    assert refused.status == 403
    supervisor = await signed_in("sveta")
    assert (await supervisor.get("/admin/webhooks", headers=HTML)).status == 403

    admin = await signed_in("root")
    no_csrf = await admin.post(
        "/admin/webhooks", data={"url": "https://a.example/", "events": "ticket.created"}
    )
    assert no_csrf.status == 403
    assert await subscriptions(sessions) == []

    await admin.refresh_csrf("/admin/webhooks")
    bad = await admin.post_form(
        "/admin/webhooks", {"url": "javascript:alert(1)", "events": "ticket.created"}
    )
    assert bad.status == 400 and "https://" in await bad.text()
    none = await admin.post_form("/admin/webhooks", {"url": "https://hooks.example.ru/cc"})
    assert none.status == 400
    created = await admin.post(
        "/admin/webhooks",
        data=[
            ("_csrf", admin.csrf),
            ("url", "https://hooks.example.ru/cc"),
            ("events", "ticket.created"),
            ("events", "call.ended"),
            ("events", "no.such.event"),
            ("description", "Трекер <b>задач</b>"),
        ],
    )
    assert created.status == 303
    [subscription] = await subscriptions(sessions)
    assert subscription.events == ["ticket.created", "call.ended"] and subscription.active
    assert subscription.secret.startswith("whsec_") and len(subscription.secret) > 40

    page = await (await admin.get("/admin/webhooks", headers=HTML)).text()
    assert subscription.secret in page
    assert "Трекер &lt;b&gt;задач&lt;/b&gt;" in page

    off = await admin.post_form(f"/admin/webhooks/{subscription.id}/active", {"active": "0"})
    assert off.status == 303
    [subscription] = await subscriptions(sessions)
    assert not subscription.active
    async with sessions() as session:
        actions = list(await session.scalars(select(AuditLog.action).order_by(AuditLog.id)))
    assert actions[-2:] == ["webhook.create", "webhook.deactivate"]


async def test_the_delivery_log_and_the_crm_card_keep_hostile_text_inert(
    server,
    browser_page,
    app,
    staff,
    sessions,
) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        subscription = WebhookSubscription(
            url="https://hooks.example.ru/x?" + "a" * 10,
            secret="whsec_x",
            events=["ticket.created"],
            description=HOSTILE[:200],
        )
        session.add(subscription)
        await session.flush()
        session.add(
            WebhookDelivery(
                subscription_id=subscription.id,
                outbox_id=1,
                event_id="evt_1",
                event_type="ticket.created",
                attempt=1,
                status_code=500,
                error="HTTP 500 " + HOSTILE,
            )
        )
    page, watch = browser_page
    base = str(server.make_url("")).rstrip("/")
    await _sign_in(page, base, "root")
    await page.goto(f"{base}/admin/webhooks")
    await _check(page, watch, "HTTP 500 " + HOSTILE[:40])
    assert await page.locator("#deliveries tbody tr.failed").count() == 1

    await page.goto(f"{base}/agent")
    await page.wait_for_selector("#pops[data-state=open]")
    app[HUB].publish_to_user(
        staff["root"].id,
        "card",
        {
            "id": "pop:1",
            "type": "screenpop",
            "caller_number": "+79161234567",
            "known": False,
            "crm": {
                "company": "ООО " + HOSTILE,
                "manager": "Ольга Смирнова",
                "deal_stage": "",
                "lifetime_value": "150 500 RUB",
            },
        },
    )
    await page.wait_for_selector("section.pop-crm", state="attached", timeout=10_000)
    await asyncio.sleep(0.3)
    watch.assert_inert()
    assert await page.locator(DANGEROUS).count() == 0
    crm = await page.locator("section.pop-crm").inner_text()
    assert "Из CRM" in crm and "ООО " + HOSTILE[:40] in crm
    assert "Ольга Смирнова" in crm and "150 500 RUB" in crm
    assert "Стадия сделки" not in crm  # empty fields are left out


async def test_status_shows_the_crm_and_the_outbox_backlog(signed_in, app, sessions) -> None:  # type: ignore[no-untyped-def]
    app[HEALTH].report_failure("crm", "bitrix24 crm.lead.add: HTTP 503 QUERY_LIMIT_EXCEEDED")
    async with sessions() as session, session.begin():
        for status, error in ((OutboxStatus.PENDING, ""), (OutboxStatus.FAILED, "HTTP 400 <b>")):
            session.add(
                Outbox(
                    channel="crm",
                    recipient="customer:1",
                    payload={},
                    status=status,
                    last_error=error,
                )
            )
    admin = await signed_in("root")
    page = await (await admin.get("/status", headers=HTML)).text()

    assert "QUERY_LIMIT_EXCEEDED" in page
    outbox = page[page.index('id="outbox"') :]
    assert "<td>crm</td>" in outbox and "<td>1</td>\n    <td>1</td>" in outbox
    assert "HTTP 400 &lt;b&gt;" in outbox
