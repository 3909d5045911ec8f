"""The admin's webhook page (subscriptions and delivery log) and the CRM fields on the agent's
screen-pop, hostile text inert in Chromium."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.crm.models import WebhookDelivery, WebhookSubscription
from callcenter.models import AuditLog, Outbox, OutboxStatus, utcnow
from callcenter.outbox import enqueue
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
    assert created.status == 200
    [subscription] = await subscriptions(sessions)
    assert subscription.events == ["ticket.created", "call.ended"] and subscription.active
    assert subscription.secret.startswith("whsec_") and len(subscription.secret) > 40
    assert subscription.secret in await created.text()  # shown once, on creation

    page = await (await admin.get("/admin/webhooks", headers=HTML)).text()
    assert subscription.secret not in page and f"…{subscription.secret[-4:]}" in page
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


async def audit_actions(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
    async with sessions() as session:
        return list(await session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


async def test_a_secret_is_rotated_and_shown_once(signed_in, sessions) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        session.add(
            WebhookSubscription(
                url="https://a.example/", secret="whsec_old_0001", events=["ticket.created"]
            )
        )
    [subscription] = await subscriptions(sessions)
    agent = await signed_in("anna")
    await agent.refresh_csrf("/agent")
    assert (await agent.post_form(f"/admin/webhooks/{subscription.id}/rotate", {})).status == 403
    admin = await signed_in("root")
    assert (await admin.post(f"/admin/webhooks/{subscription.id}/rotate")).status == 403  # no CSRF
    assert (await subscriptions(sessions))[0].secret == "whsec_old_0001"

    await admin.refresh_csrf("/admin/webhooks")
    rotated = await admin.post_form(f"/admin/webhooks/{subscription.id}/rotate", {})
    assert rotated.status == 200
    [subscription] = await subscriptions(sessions)
    assert subscription.secret != "whsec_old_0001" and subscription.secret.startswith("whsec_")
    shown = await rotated.text()
    assert subscription.secret in shown and 'id="revealed-secret"' in shown
    page = await (await admin.get("/admin/webhooks", headers=HTML)).text()
    assert subscription.secret not in page and "revealed-secret" not in page
    assert (await admin.post_form("/admin/webhooks/999/rotate", {})).status == 404
    assert (await audit_actions(sessions))[-1] == "webhook.rotate"


async def test_a_failed_delivery_is_sent_again_and_a_subscription_deleted(
    signed_in, sessions
) -> None:  # type: ignore[no-untyped-def]
    async with sessions() as session, session.begin():
        hook = WebhookSubscription(
            url="https://a.example/", secret="whsec_1", events=["call.ended"]
        )
        other = WebhookSubscription(
            url="https://b.example/", secret="whsec_2", events=["call.ended"]
        )
        session.add_all([hook, other])
        await session.flush()
        rows = {}
        for name, status, recipient in (
            ("failed", OutboxStatus.FAILED, f"subscription:{hook.id}"),
            ("pending", OutboxStatus.PENDING, f"subscription:{hook.id}:customer:5"),
            ("sent", OutboxStatus.SENT, f"subscription:{hook.id}"),
            ("erased", OutboxStatus.FAILED, ""),
            ("others", OutboxStatus.PENDING, f"subscription:{other.id}"),
        ):
            event = {"id": f"evt_{name}", "type": "call.ended", "data": {}}
            payload = {"subscription_id": hook.id, "event": event} if recipient else {}
            row = enqueue(session, channel="signed_webhook", recipient=recipient, payload=payload)
            row.status, row.attempts, row.last_error = status, 12, "HTTP 500"
            await session.flush()
            delivery = WebhookDelivery(
                subscription_id=other.id if name == "others" else hook.id,
                outbox_id=row.id,
                event_id=f"evt_{name}",
                event_type="call.ended",
                attempt=12,
                status_code=500,
                error="HTTP 500",
                at=utcnow(),
            )
            session.add(delivery)
            await session.flush()
            rows[name] = (row.id, delivery.id)
    admin = await signed_in("root")
    page = await (await admin.get("/admin/webhooks", headers=HTML)).text()
    redeliverable = {n for n, (_, d) in rows.items() if f"/deliveries/{d}/redeliver" in page}
    assert redeliverable == {"failed"}

    agent = await signed_in("anna")
    await agent.refresh_csrf("/agent")
    failed_row, failed_delivery = rows["failed"]
    assert (
        await agent.post_form(f"/admin/webhooks/deliveries/{failed_delivery}/redeliver", {})
    ).status == 403
    assert (
        await admin.post(f"/admin/webhooks/deliveries/{failed_delivery}/redeliver")
    ).status == 403
    await admin.refresh_csrf("/admin/webhooks")
    again = await admin.post_form(f"/admin/webhooks/deliveries/{failed_delivery}/redeliver", {})
    assert again.status == 303
    for name in ("failed", "sent", "erased"):  # the first is queued again now
        answer = await admin.post_form(f"/admin/webhooks/deliveries/{rows[name][1]}/redeliver", {})
        assert answer.status == 409, name
    async with sessions() as session:
        row = await session.get(Outbox, failed_row)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.PENDING, 0, "")
    assert row.next_attempt_at <= utcnow()

    deleted = await admin.post_form(f"/admin/webhooks/{hook.id}/delete", {})
    assert deleted.status == 303
    assert [s.id for s in await subscriptions(sessions)] == [other.id]
    async with sessions() as session:
        statuses = {name: (await session.get(Outbox, rows[name][0])).status for name in rows}
        log = await session.scalar(select(func.count()).select_from(WebhookDelivery))
    assert statuses == {
        "failed": OutboxStatus.FAILED,
        "pending": OutboxStatus.FAILED,
        "sent": OutboxStatus.SENT,
        "erased": OutboxStatus.FAILED,
        "others": OutboxStatus.PENDING,
    }
    assert log == 1  # the other subscription's
    assert (await audit_actions(sessions))[-2:] == ["webhook.redeliver", "webhook.delete"]
