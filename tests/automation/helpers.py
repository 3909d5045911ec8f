"""Building customers, messages and calls for the automation tests, and reading what they did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.actions import AutomationConfig
from callcenter.automation.business_hours import parse_hours
from callcenter.automation.models import RuleFiring
from callcenter.automation.surveys import SurveySigner
from callcenter.domain.customers import attach_identity, create_customer
from callcenter.domain.inbox import InboundMessage, IngestResult, ingest
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Direction,
    IdentityKind,
    Interaction,
    Outbox,
    Ticket,
)

T0 = datetime(2025, 11, 14, 11, 23, tzinfo=UTC)
"""Friday 14 November 2025, 14:23 in Moscow."""

SECRET = "test-session-key"
PUBLIC_URL = "https://help.example.ru"


def config(emails_per_hour: int = 5) -> AutomationConfig:
    return AutomationConfig(
        hours=parse_hours("mon-fri 09:00-18:00", "Europe/Moscow"),
        signer=SurveySigner(SECRET),
        public_url=PUBLIC_URL,
        emails_per_hour=emails_per_hour,
    )


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


async def make_customer(
    sessions: async_sessionmaker[AsyncSession],
    name: str = "Иван Петров",
    *,
    language: str = "ru",
    email: str | None = None,
    phone: str | None = None,
    telegram: int | None = None,
) -> int:
    async with sessions() as session, session.begin():
        customer = await create_customer(session, name, language)
        for kind, value in (
            (IdentityKind.EMAIL, email),
            (IdentityKind.PHONE, phone),
            (IdentityKind.TELEGRAM, telegram),
        ):
            if value is not None:
                await attach_identity(session, customer, kind, value)
        return customer.id


def telegram_message(text: str, message_id: int, *, at: datetime = T0, user: int = 7001):
    return InboundMessage(
        channel=Channel.TELEGRAM,
        external_id=f"{user}:{message_id}",
        identity_kind=IdentityKind.TELEGRAM,
        identity_value=str(user),
        display_name="Иван Петров",
        occurred_at=at,
        text=text,
    )


def email_message(
    text: str,
    message_id: str,
    *,
    subject: str = "",
    at: datetime = T0,
    address: str = "ivan@example.ru",
    name: str = "Иван Петров",
    language: str = "ru",
) -> InboundMessage:
    return InboundMessage(
        channel=Channel.EMAIL,
        external_id=message_id,
        identity_kind=IdentityKind.EMAIL,
        identity_value=address,
        display_name=name,
        occurred_at=at,
        text=text,
        subject=subject,
        language=language,
    )


async def receive(sessions: async_sessionmaker[AsyncSession], message: InboundMessage):
    """Store a message as a channel adapter would; returns the result with its events."""
    async with sessions() as session, session.begin():
        result: IngestResult = await ingest(session, message)
    return result


async def make_call(
    sessions: async_sessionmaker[AsyncSession],
    customer_id: int,
    *,
    outcome: CallOutcome,
    caller: str = "+79161234567",
    at: datetime = T0,
    with_ticket: bool = True,
) -> tuple[int, int | None]:
    """A call interaction with its Call row; returns (interaction id, ticket id)."""
    async with sessions() as session, session.begin():
        ticket = None
        if with_ticket:
            ticket = Ticket(customer_id=customer_id, channel=Channel.CALL, subject="Звонок")
            session.add(ticket)
            await session.flush()
        interaction = Interaction(
            customer_id=customer_id,
            ticket_id=ticket.id if ticket else None,
            channel=Channel.CALL,
            direction=Direction.INBOUND,
            external_id=f"linked-{at.timestamp()}-{caller}",
            occurred_at=at,
        )
        session.add(interaction)
        await session.flush()
        session.add(
            Call(
                interaction_id=interaction.id,
                linkedid=interaction.external_id,
                queue="support",
                caller_number=caller,
                outcome=outcome,
                started_at=at,
                wait_seconds=45,
            )
        )
        return interaction.id, ticket.id if ticket else None


async def outbox_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as session:
        return list(await session.scalars(select(Outbox).order_by(Outbox.id)))


async def firing_log(sessions: async_sessionmaker[AsyncSession]) -> list[RuleFiring]:
    async with sessions() as session:
        return list(await session.scalars(select(RuleFiring).order_by(RuleFiring.id)))
