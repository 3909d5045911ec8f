"""The agent's workspace on the customer page: threads per ticket, replies through the outbox,
internal notes, ticket actions and merging customers."""

from __future__ import annotations

import asyncio
import email
from datetime import timedelta
from email import policy

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.events import TicketSolved
from callcenter.channels.email.smtp import SmtpSender
from callcenter.domain.customers import attach_identity, create_customer
from callcenter.domain.events import AgentReplied
from callcenter.models import (
    AuditLog,
    Channel,
    Customer,
    Direction,
    Identity,
    IdentityKind,
    Interaction,
    MergeSuggestion,
    Outbox,
    OutboxStatus,
    Ticket,
    TicketStatus,
    User,
)
from callcenter.outbox import OutboxWorker
from callcenter.web.keys import BUS
from tests.email import support as email_support
from tests.services.smtp import running_smtp
from tests.web.seeding import T0, customer_with_history
from tests.web.test_xss import CORPUS, DANGEROUS, HOSTILE, _check, _sign_in


@pytest.fixture
async def ivan(sessions: async_sessionmaker[AsyncSession], staff) -> tuple[int, int]:
    """(customer id, ticket id) of a customer with email, Telegram and a phone."""
    async with sessions() as db, db.begin():
        customer = await customer_with_history(db)
        ticket = await db.scalar(select(Ticket).where(Ticket.customer_id == customer.id))
        ticket.order_numbers, ticket.created_at = ["123456"], T0
        await db.execute(  # stored as the email worker does: without the angle brackets
            update(Interaction)
            .where(Interaction.channel == Channel.EMAIL)
            .values(external_id=f"{customer.id}@mail.example")
        )
    return customer.id, ticket.id


@pytest.fixture
def events(app) -> list[object]:
    seen: list[object] = []

    async def keep(event: object) -> None:
        seen.append(event)

    app[BUS].subscribe(AgentReplied, keep)
    app[BUS].subscribe(TicketSolved, keep)
    return seen


async def _published(app, seen: list[object]) -> list[object]:
    await app[BUS].drain()
    return seen


async def _ticket(sessions, ticket_id: int) -> Ticket:
    async with sessions() as db:
        return await db.get(Ticket, ticket_id)


async def _outbox(sessions) -> list[Outbox]:
    async with sessions() as db:
        return list(await db.scalars(select(Outbox).order_by(Outbox.id)))


async def _audit(sessions, action: str) -> list[AuditLog]:
    async with sessions() as db:
        return list(await db.scalars(select(AuditLog).where(AuditLog.action == action)))


async def test_the_page_shows_one_thread_per_ticket_newest_first(signed_in, sessions, ivan):
    customer_id, ticket_id = ivan
    async with sessions() as db, db.begin():
        newer = Ticket(
            customer_id=customer_id,
            channel=Channel.TELEGRAM,
            subject="Возврат",
            intents=["refund"],
            created_at=T0 + timedelta(days=1),
        )
        db.add(newer)
        await db.flush()
        db.add(
            Interaction(
                customer_id=customer_id,
                ticket_id=newer.id,
                channel=Channel.TELEGRAM,
                direction=Direction.INBOUND,
                text="Хочу вернуть заказ 777888",
                order_numbers=["777888"],
                occurred_at=T0 + timedelta(days=1),
            )
        )
    page = await (await (await signed_in("anna")).get(f"/customers/{customer_id}")).text()
    assert page.index(f'id="ticket-{newer.id}"') < page.index(f'id="ticket-{ticket_id}"')
    assert 'Хочу вернуть заказ <mark class="order">777888</mark>' in page
    assert 'Добрый день, заказ <mark class="order">123456</mark> где?' in page
    assert '<span class="intent-name">refund</span>' in page
    assert "чек.pdf" in page and "Вне обращений" in page  # the call has no ticket
    assert 'value="telegram"' in page and 'value="email"' in page


async def test_a_telegram_reply_is_queued_recorded_and_published(
    signed_in, sessions, ivan, app, events, staff
):
    customer_id, ticket_id = ivan
    anna = await signed_in("anna")
    text = "Здравствуйте! Заказ 123456 уже в пути."
    response = await anna.post_form(
        f"/tickets/{ticket_id}/reply", {"channel": "telegram", "text": text}
    )
    assert response.status == 303
    assert response.headers["Location"] == f"/customers/{customer_id}#ticket-{ticket_id}"
    [row] = await _outbox(sessions)
    async with sessions() as db:
        [reply] = await db.scalars(
            select(Interaction).where(Interaction.direction == Direction.OUTBOUND)
        )
    assert (row.channel, row.recipient, row.ticket_id) == ("telegram", "123456789", ticket_id)
    assert row.payload == {"text": text, "interaction_id": reply.id}
    assert (reply.channel, reply.ticket_id, reply.agent_id) == (
        Channel.TELEGRAM,
        ticket_id,
        staff["anna"].id,
    )
    ticket = await _ticket(sessions, ticket_id)
    assert ticket.first_response_at is not None and ticket.status is TicketStatus.OPEN
    assert await _published(app, events) == [
        AgentReplied(ticket_id, reply.id, staff["anna"].id, Channel.TELEGRAM)
    ]
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert "уже в пути" in page and "delivery-pending" in page

    async with sessions() as db, db.begin():
        await db.execute(
            update(Outbox).values(status=OutboxStatus.FAILED, last_error="Forbidden: bot blocked")
        )
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert "НЕ доставлено" in page and "Forbidden: bot blocked" in page


async def test_an_email_reply_is_threaded_to_the_customers_last_mail(
    signed_in, sessions, ivan, app, events, staff
):
    customer_id, ticket_id = ivan
    anna = await signed_in("anna")
    text = "Добрый день, Иван! Заказ отправлен."
    response = await anna.post_form(
        f"/tickets/{ticket_id}/reply", {"channel": "email", "text": text}
    )
    assert response.status == 303
    [row] = await _outbox(sessions)
    async with sessions() as db:
        [reply] = await db.scalars(
            select(Interaction).where(Interaction.direction == Direction.OUTBOUND)
        )
    assert (row.channel, row.recipient, row.ticket_id) == (
        "email",
        "ivan.petrov@example.ru",
        ticket_id,
    )
    assert row.payload == {
        "text": text,
        "interaction_id": reply.id,
        "to": "ivan.petrov@example.ru",
        "to_name": "Иван Петров",
        "ticket_id": ticket_id,
        "in_reply_to": f"{customer_id}@mail.example",
    }
    assert reply.channel is Channel.EMAIL and reply.text == text
    assert (await _ticket(sessions, ticket_id)).first_response_at is not None
    [event] = await _published(app, events)
    assert event == AgentReplied(ticket_id, reply.id, staff["anna"].id, Channel.EMAIL)


async def test_the_email_reply_goes_out_in_the_customers_thread(
    signed_in, sessions, ivan, tmp_path
):
    """Through the real sender to a loopback SMTP server: threaded, and its Message-ID copied
    onto the reply so the customer's answer lands on the same ticket."""
    customer_id, ticket_id = ivan
    anna = await signed_in("anna")
    await anna.post_form(f"/tickets/{ticket_id}/reply", {"channel": "email", "text": "Отправлен."})
    async with running_smtp() as smtp:
        sender = SmtpSender(email_support.settings(tmp_path, smtp=smtp), sessions)
        while await OutboxWorker(sessions, [sender]).run_once():
            pass
        [received] = await smtp.wait_for(1)
    message = email.message_from_bytes(received.content, policy=policy.default)
    assert received.rcpt_tos == ("ivan.petrov@example.ru",)
    assert message["In-Reply-To"] == f"<{customer_id}@mail.example>"
    assert message["Subject"] == f"Re: Где мой заказ? [#{ticket_id}]"
    [row] = await _outbox(sessions)
    async with sessions() as db:
        [reply] = await db.scalars(
            select(Interaction).where(Interaction.direction == Direction.OUTBOUND)
        )
    assert row.status is OutboxStatus.SENT and message["Message-ID"] == f"<{reply.external_id}>"
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert "delivery-sent" in page and "доставлено" in page


async def test_no_telegram_reply_to_a_failing_chat(signed_in, sessions, ivan):
    customer_id, ticket_id = ivan
    async with sessions() as db, db.begin():
        await db.execute(
            update(Identity).where(Identity.kind == IdentityKind.TELEGRAM).values(failing=True)
        )
    anna = await signed_in("anna")
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert 'value="telegram"' not in page and 'value="email"' in page
    refused = await anna.post_form(
        f"/tickets/{ticket_id}/reply", {"channel": "telegram", "text": "Алло"}
    )
    assert refused.status == 400
    assert "нет рабочего адреса" in await refused.text()
    empty = await anna.post_form(f"/tickets/{ticket_id}/reply", {"channel": "email", "text": " "})
    assert empty.status == 400 and "текст пуст" in await empty.text()
    assert await _outbox(sessions) == []
    assert (await _ticket(sessions, ticket_id)).first_response_at is None


async def test_a_note_is_internal_and_sends_nothing(signed_in, sessions, ivan, app, events):
    customer_id, ticket_id = ivan
    anna = await signed_in("anna")
    response = await anna.post_form(f"/tickets/{ticket_id}/note", {"text": "Клиент VIP, звонить"})
    assert response.status == 303
    async with sessions() as db:
        [note] = await db.scalars(select(Interaction).where(Interaction.channel == Channel.NOTE))
    assert note.direction is Direction.INTERNAL and note.ticket_id == ticket_id
    assert await _outbox(sessions) == []
    assert (await _ticket(sessions, ticket_id)).first_response_at is None
    assert await _published(app, events) == []
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert "Клиент VIP, звонить" in page and "видно только сотрудникам" in page


async def test_solving_and_reopening(signed_in, sessions, ivan, app, events, staff):
    customer_id, ticket_id = ivan
    sveta = await signed_in("sveta")
    assert (
        await sveta.post_form(f"/tickets/{ticket_id}/status", {"status": "solved"})
    ).status == 303
    ticket = await _ticket(sessions, ticket_id)
    assert ticket.status is TicketStatus.SOLVED and ticket.solved_at is not None
    assert await _published(app, events) == [TicketSolved(ticket_id, customer_id, ticket.solved_at)]
    assert (await sveta.post_form(f"/tickets/{ticket_id}/status", {"status": "open"})).status == 303
    ticket = await _ticket(sessions, ticket_id)
    assert ticket.status is TicketStatus.OPEN and ticket.reopened_count == 1
    assert ticket.solved_at is None
    changes = [
        (e.details["from"], e.details["to"]) for e in await _audit(sessions, "ticket.status")
    ]
    assert changes == [("new", "solved"), ("solved", "open")]
    bad = await sveta.post_form(f"/tickets/{ticket_id}/status", {"status": "done"})
    assert bad.status == 400 and "Неизвестный статус" in await bad.text()
    assert len(await _published(app, events)) == 1


async def test_assigning(signed_in, sessions, ivan, staff):
    customer_id, ticket_id = ivan
    anna = await signed_in("anna")
    boris = str(staff["boris"].id)
    assert (
        await anna.post_form(f"/tickets/{ticket_id}/assign", {"assignee_id": boris})
    ).status == 303
    assert (await _ticket(sessions, ticket_id)).assignee_id == staff["boris"].id
    [entry] = await _audit(sessions, "ticket.assign")
    assert entry.actor == "anna" and entry.details == {"from": None, "to": staff["boris"].id}
    refused = await anna.post_form(f"/tickets/{ticket_id}/assign", {"assignee_id": "99999"})
    assert refused.status == 400
    assert (await _ticket(sessions, ticket_id)).assignee_id == staff["boris"].id
    async with sessions() as db, db.begin():
        await db.execute(update(User).where(User.username == "boris").values(active=False))
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert "Ответственный: Boris" in page and f'<option value="{boris}"' not in page
    assert (await anna.post_form(f"/tickets/{ticket_id}/assign", {"assignee_id": ""})).status == 303
    assert (await _ticket(sessions, ticket_id)).assignee_id is None


async def test_adding_and_removing_intents(signed_in, sessions, ivan):
    _, ticket_id = ivan
    anna = await signed_in("anna")
    for form in ({"add": "delivery"}, {"add": "refund"}, {"add": "refund"}, {"remove": "delivery"}):
        assert (await anna.post_form(f"/tickets/{ticket_id}/intents", form)).status == 303
    assert (await _ticket(sessions, ticket_id)).intents == ["refund"]
    refused = await anna.post_form(f"/tickets/{ticket_id}/intents", {"add": "Доставка"})
    assert refused.status == 400 and "латинские" in await refused.text()
    assert (await _ticket(sessions, ticket_id)).intents == ["refund"]
    assert len(await _audit(sessions, "ticket.intents")) == 3


async def test_merging_from_the_page(signed_in, sessions, ivan, staff):
    customer_id, _ = ivan
    async with sessions() as db, db.begin():
        other = await create_customer(db, "Иван П.")
        await attach_identity(db, other, IdentityKind.PHONE, "+79167654321")
        db.add(Ticket(customer_id=other.id, channel=Channel.CALL, subject="Звонок"))
        db.add(
            MergeSuggestion(
                customer_id=customer_id, other_customer_id=other.id, reason="order", evidence="1"
            )
        )
    anna = await signed_in("anna")
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert f'<a href="/customers/{other.id}" class="suggestion">#{other.id}</a>' in page

    self_merge = await anna.post_form(
        f"/customers/{customer_id}/merge", {"source_id": str(customer_id)}
    )
    assert self_merge.status == 400
    assert "нельзя объединить с самим собой" in await self_merge.text()
    missing = await anna.post_form(f"/customers/{customer_id}/merge", {"source_id": "987654"})
    assert missing.status == 404 and "клиента #987654 нет" in await missing.text()

    merged = await anna.post_form(f"/customers/{customer_id}/merge", {"source_id": str(other.id)})
    assert merged.status == 303 and merged.headers["Location"] == f"/customers/{customer_id}"
    async with sessions() as db:
        assert (await db.get(Customer, other.id)).merged_into_id == customer_id
    [entry] = await _audit(sessions, "customer.merge")
    assert entry.actor == "anna" and entry.details["source_id"] == other.id
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert "+79167654321" in page and "Звонок" in page and 'class="suggestion"' not in page
    async with sessions() as db, db.begin():  # a suggestion naming the merged-away profile
        third = await create_customer(db, "Третий")
        db.add(MergeSuggestion(customer_id=third.id, other_customer_id=other.id, reason="email"))
    page = await (await anna.get(f"/customers/{customer_id}")).text()
    assert f'<a href="/customers/{third.id}" class="suggestion">' in page


async def test_no_action_without_the_csrf_token(signed_in, sessions, ivan):
    customer_id, ticket_id = ivan
    anna = await signed_in("anna")
    for path, data in (
        (f"/tickets/{ticket_id}/reply", {"channel": "telegram", "text": "x"}),
        (f"/tickets/{ticket_id}/note", {"text": "x"}),
        (f"/tickets/{ticket_id}/status", {"status": "solved"}),
        (f"/tickets/{ticket_id}/intents", {"add": "refund"}),
        (f"/customers/{customer_id}/merge", {"source_id": "1"}),
    ):
        response = await anna.post(path, data=data)
        assert response.status == 403, path
    ticket = await _ticket(sessions, ticket_id)
    assert ticket.status is TicketStatus.NEW and ticket.intents == []
    assert await _outbox(sessions) == []


async def test_hostile_text_is_inert_in_the_workspace(
    server, browser_page, sessions, staff
) -> None:
    async with sessions() as db, db.begin():
        customer = await create_customer(db, "Клиент " + HOSTILE)
        await attach_identity(db, customer, IdentityKind.TELEGRAM, 5151, display="@" + HOSTILE)
        ticket = Ticket(
            customer_id=customer.id,
            channel=Channel.TELEGRAM,
            subject=("Тема " + HOSTILE)[:500],
            order_numbers=["<svg onload=alert(9)>"],
        )
        db.add(ticket)
        await db.flush()
        said = Interaction(
            customer_id=customer.id,
            ticket_id=ticket.id,
            channel=Channel.TELEGRAM,
            direction=Direction.INBOUND,
            text="Сообщение " + HOSTILE + " <svg onload=alert(9)>",
            order_numbers=["<svg onload=alert(9)>"],
            attachments=[{"kind": "document", "file_name": HOSTILE[:255], "size": 2048}],
            occurred_at=T0,
        )
        answered = Interaction(
            customer_id=customer.id,
            ticket_id=ticket.id,
            channel=Channel.TELEGRAM,
            direction=Direction.OUTBOUND,
            text="Ответ " + HOSTILE,
            occurred_at=T0 + timedelta(minutes=1),
        )
        db.add_all([said, answered])
        await db.flush()
        db.add(
            Outbox(
                channel="telegram",
                recipient="5151",
                payload={"text": answered.text, "interaction_id": answered.id},
                ticket_id=ticket.id,
                status=OutboxStatus.FAILED,
                last_error="Bad Request: " + HOSTILE,
            )
        )
    page, watch = browser_page
    base = str(server.make_url("")).rstrip("/")
    await _sign_in(page, base, "anna")
    await page.goto(f"{base}/customers/{customer.id}")
    await _check(page, watch, "Тема " + CORPUS[0])
    body = await page.locator("body").inner_text()
    assert "Bad Request: " + CORPUS[0] in body and "Ответ " + CORPUS[0] in body
    assert "Сообщение " + HOSTILE + " <svg onload=alert(9)>" in body
    assert await page.locator("mark.order").count() >= 2
    assert await page.locator("li.attachment").inner_text() == HOSTILE[:255] + " (2.0 kB)"
    await page.fill(f"#ticket-{ticket.id} form.note textarea", "<img src=x onerror=alert(10)>")
    await page.click(f"#ticket-{ticket.id} form.note button")
    await page.wait_for_load_state()
    await asyncio.sleep(0.2)
    watch.assert_inert()
    assert await page.locator(DANGEROUS).count() == 0
    assert "<img src=x onerror=alert(10)>" in await page.locator("li.dir-internal").inner_text()
