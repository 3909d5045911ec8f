"""Customers with identities and a timeline, written straight through the models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.domain.customers import attach_identity, create_customer
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Customer,
    Direction,
    IdentityKind,
    Interaction,
    OrderRef,
    Ticket,
)

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


async def customer_with_history(
    db: AsyncSession,
    name: str = "Иван Петров",
    *,
    phone: str = "+79161234567",
    email: str = "ivan.petrov@example.ru",
    telegram: tuple[int, str] = (123456789, "@ivan_petrov"),
    order: str = "123456",
    subject: str = "Где мой заказ?",
    html: str = "<p>Здравствуйте! <b>Заказ 123456</b> не пришёл.</p>",
    recording: str | None = None,
) -> Customer:
    customer = await create_customer(db, name)
    await attach_identity(db, customer, IdentityKind.PHONE, phone, source="call")
    await attach_identity(db, customer, IdentityKind.EMAIL, email, display=email, source="email")
    await attach_identity(
        db, customer, IdentityKind.TELEGRAM, telegram[0], display=telegram[1], source="telegram"
    )
    ticket = Ticket(customer_id=customer.id, channel=Channel.EMAIL, subject=subject)
    db.add(ticket)
    await db.flush()
    db.add(OrderRef(order_number=order, customer_id=customer.id, ticket_id=ticket.id))
    items = [
        Interaction(
            customer_id=customer.id,
            ticket_id=ticket.id,
            channel=Channel.EMAIL,
            direction=Direction.INBOUND,
            external_id=f"<{customer.id}@mail.example>",
            text="Здравствуйте! Заказ 123456 не пришёл.",
            html=html,
            attachments=[{"filename": "чек.pdf", "path": "receipt.pdf"}],
            order_numbers=[order],
            occurred_at=T0,
        ),
        Interaction(
            customer_id=customer.id,
            ticket_id=ticket.id,
            channel=Channel.TELEGRAM,
            direction=Direction.INBOUND,
            external_id=f"{telegram[0]}:1",
            text="Добрый день, заказ 123456 где?",
            occurred_at=T0 + timedelta(minutes=5),
        ),
        Interaction(
            customer_id=customer.id,
            channel=Channel.CALL,
            direction=Direction.INBOUND,
            external_id=f"linked-{customer.id}",
            text="",
            occurred_at=T0 + timedelta(minutes=10),
        ),
    ]
    db.add_all(items)
    await db.flush()
    db.add(
        Call(
            interaction_id=items[2].id,
            linkedid=f"linked-{customer.id}",
            queue="sales",
            caller_number=phone,
            wait_seconds=12,
            talk_seconds=95,
            outcome=CallOutcome.ANSWERED,
            recording_path=recording,
            started_at=T0 + timedelta(minutes=10),
        )
    )
    await db.flush()
    return customer
