"""What the product asks of a CRM, whichever vendor: find a customer, record tickets, messages
and calls. Connectors raise the outbox's ``RetryLater`` (network, 5xx, rate limit, expired
credentials) or ``PermanentFailure`` (the CRM refused the data) so pushes retry through it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class CrmProfile:
    """The CRM's view of a customer, as the screen-pop shows it (all plain text)."""

    crm_id: str
    name: str = ""
    company: str = ""
    manager: str = ""
    deal_stage: str = ""
    lifetime_value: str = ""


@dataclass(frozen=True)
class Contact:
    name: str = ""
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TicketPush:
    ticket_id: int
    subject: str
    text: str
    channel: str
    contact: Contact


@dataclass(frozen=True)
class MessagePush:
    interaction_id: int
    ticket_id: int
    channel: str
    text: str
    outbound: bool = False
    """An agent's reply rather than the customer's message."""


@dataclass(frozen=True)
class CallPush:
    interaction_id: int
    phone: str
    started_at: str
    """ISO 8601 with offset."""
    duration_seconds: int
    answered: bool
    recording_url: str = ""
    contact_name: str = ""
    agent: str = ""
    """Our login of the agent who took the call; empty if nobody did."""
    outbound: bool = False
    """We called the customer (a callback, click-to-call) rather than they us."""
    outcome: str = ""
    """The stored call's outcome (``CallOutcome`` value): says why an outbound one was not
    answered (no_answer, busy, failed); empty in pushes queued before it was sent."""


@dataclass(frozen=True)
class Ref:
    """A CRM entity: its type (lead, deal, Leads, Calls ...) and id."""

    type: str
    id: str


class Steps(Protocol):
    """What a push of several requests already did, kept across retries of its outbox row."""

    def get(self, step: str) -> str | None: ...

    async def save(self, step: str, value: str) -> None: ...


class Connector(Protocol):
    name: str

    async def lookup(self, *, phone: str = "", email: str = "") -> CrmProfile | None: ...

    async def push_ticket(self, ticket: TicketPush) -> Ref: ...

    async def push_message(self, message: MessagePush, parent: Ref) -> Ref: ...

    async def push_call(self, call: CallPush, steps: Steps) -> Ref: ...


def money(amount: float, currency: str) -> str:
    whole = f"{amount:,.2f}".replace(",", "\u00a0").removesuffix(".00")
    return f"{whole} {currency}".strip()
