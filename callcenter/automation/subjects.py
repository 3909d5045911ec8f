"""What a rule acts on: the customer, ticket, interaction and call behind an event, loaded once
and turned into condition facts and template variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.conditions import Facts
from callcenter.domain.customers import get_customer
from callcenter.models import Call, Customer, Identity, IdentityKind, Interaction, Ticket


@dataclass
class Subject:
    trigger: str
    key: str
    """Identifies the event: with the rule id it makes the firing key."""
    customer: Customer
    identities: list[Identity]
    ticket: Ticket | None = None
    interaction: Interaction | None = None
    call: Call | None = None
    channel: str | None = None
    intents: frozenset[str] = frozenset()
    caller_number: str = ""
    at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """More template variables (``wrapup``, ``survey``)."""

    def identity(self, kind: IdentityKind) -> Identity | None:
        """The best identity of a kind: verified before unverified, then the newest."""
        found = [i for i in self.identities if i.kind is kind]
        return max(found, key=lambda i: (i.verified, i.id), default=None)

    def facts(self, now: datetime) -> Facts:
        return Facts(
            at=now,
            channel=self.channel,
            intents=self.intents | frozenset(self.ticket.intents if self.ticket else ()),
            status=self.ticket.status.value if self.ticket else None,
            priority=self.ticket.priority if self.ticket else None,
            language=self.customer.language,
            reachable=frozenset(i.kind.value for i in self.identities)
            | ({"phone"} if self.caller_number else set()),
            call_outcome=self.call.outcome.value if self.call else None,
        )

    def variables(self, zone: ZoneInfo) -> dict[str, Any]:
        """Template variables: plain values only, templates never see ORM objects."""
        values: dict[str, Any] = {
            "customer": {
                "id": self.customer.id,
                "name": self.customer.display_name,
                "language": self.customer.language,
            },
            "ticket": None,
        }
        if self.ticket is not None:
            values["ticket"] = {
                "id": self.ticket.id,
                "subject": self.ticket.subject,
                "status": self.ticket.status.value,
                "channel": self.ticket.channel.value,
                "priority": self.ticket.priority,
            }
        if self.interaction is not None and self.interaction.channel.value != "call":
            values["message"] = {
                "text": self.interaction.text,
                "channel": self.interaction.channel.value,
            }
        if self.call is not None or self.trigger in CALL_TRIGGERS:
            values["call"] = self._call(zone)
        values.update(self.extra)
        return values

    def _call(self, zone: ZoneInfo) -> dict[str, Any]:
        call = self.call
        started = (
            call.started_at
            if call
            else self.interaction.occurred_at
            if self.interaction
            else self.at
        )
        local = started.astimezone(zone) if started else None
        return {
            "date": local.strftime("%d.%m.%Y") if local else "",
            "time": local.strftime("%H:%M") if local else "",
            "caller_number": self.caller_number,
            "queue": call.queue if call else None,
            "wait_seconds": call.wait_seconds if call else 0,
            "talk_seconds": call.talk_seconds if call else 0,
            "outcome": call.outcome.value if call else None,
        }


CALL_TRIGGERS = frozenset({"call_ended", "call_abandoned", "wrap_up_saved"})


async def load_subject(
    session: AsyncSession,
    trigger: str,
    key: str,
    *,
    customer_id: int | None = None,
    ticket_id: int | None = None,
    interaction_id: int | None = None,
    channel: str | None = None,
    intents: tuple[str, ...] = (),
    caller_number: str = "",
    at: datetime | None = None,
    extra: dict[str, Any] | None = None,
) -> Subject:
    """Load the records behind an event; the customer comes from the ticket or interaction
    when the event does not name one, and merged profiles are followed to the live one."""
    ticket = await session.get(Ticket, ticket_id) if ticket_id is not None else None
    interaction = (
        await session.get(Interaction, interaction_id) if interaction_id is not None else None
    )
    if ticket is None and interaction is not None and interaction.ticket_id is not None:
        ticket = await session.get(Ticket, interaction.ticket_id)
    if customer_id is None:
        source = ticket or interaction
        if source is None:
            raise ValueError(f"{trigger} event {key!r} names no customer, ticket or interaction")
        customer_id = source.customer_id
    customer = await get_customer(session, customer_id)
    identities = list(
        await session.scalars(
            select(Identity).where(Identity.customer_id == customer.id, ~Identity.failing)
        )
    )
    call = await session.get(Call, interaction_id) if interaction_id is not None else None
    return Subject(
        trigger=trigger,
        key=key,
        customer=customer,
        identities=identities,
        ticket=ticket,
        interaction=interaction,
        call=call,
        channel=channel or (interaction.channel.value if interaction else None),
        intents=frozenset(intents),
        caller_number=caller_number or (call.caller_number if call else ""),
        at=at,
        extra=extra or {},
    )
