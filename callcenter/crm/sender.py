"""The ``crm`` outbox channel: tickets, messages and calls pushed to the configured CRM.

Rows of one customer go out in order (the outbox holds later rows of a recipient while an
earlier one is pending), so a ticket's lead exists before its messages are added to it. What
each push created is remembered in ``crm_records``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.crm.base import CallPush, Connector, Contact, MessagePush, Ref, TicketPush
from callcenter.crm.models import CrmRecord
from callcenter.crm.once import enqueue_once
from callcenter.health import HealthRegistry, registry
from callcenter.models import Outbox
from callcenter.outbox import PermanentFailure

CHANNEL = "crm"


async def enqueue_push(
    session: AsyncSession, customer_id: int, kind: str, key: str, **parts: Any
) -> bool:
    """A push, once per ``key``; the recipient ``customer:<id>`` orders a customer's pushes and
    lets erasure find them."""
    return await enqueue_once(
        session,
        f"crm:{key}",
        channel=CHANNEL,
        recipient=f"customer:{customer_id}",
        payload={"kind": kind, **parts},
    )


def ticket_push(data: dict[str, Any]) -> TicketPush:
    return TicketPush(**{**data, "contact": Contact(**data["contact"])})


class StoredSteps:
    """A call push's finished steps, as ``crm_records`` rows of kind ``call.<step>``."""

    def __init__(self, sender: CrmSender, interaction_id: int, done: dict[str, str]) -> None:
        self.sender = sender
        self.interaction_id = interaction_id
        self.done = done

    def get(self, step: str) -> str | None:
        return self.done.get(step)

    async def save(self, step: str, value: str) -> None:
        await self.sender._remember(f"call.{step}", self.interaction_id, Ref("step", value))
        self.done[step] = value


class CrmSender:
    channel = CHANNEL

    def __init__(
        self,
        connector: Connector,
        sessions: async_sessionmaker[AsyncSession],
        *,
        health: HealthRegistry = registry,
    ) -> None:
        self.connector = connector
        self.sessions = sessions
        self.health = health

    async def _known(self, kind: str, local_id: int) -> Ref | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(CrmRecord).where(
                    CrmRecord.provider == self.connector.name,
                    CrmRecord.local_kind == kind,
                    CrmRecord.local_id == local_id,
                )
            )
        return Ref(row.remote_type, row.remote_id) if row else None

    async def _remember(self, kind: str, local_id: int, ref: Ref) -> None:
        async with self.sessions() as session, session.begin():
            session.add(
                CrmRecord(
                    provider=self.connector.name,
                    local_kind=kind,
                    local_id=local_id,
                    remote_type=ref.type,
                    remote_id=ref.id,
                )
            )

    async def _steps(self, interaction_id: int) -> StoredSteps:
        async with self.sessions() as session:
            rows = await session.scalars(
                select(CrmRecord).where(
                    CrmRecord.provider == self.connector.name,
                    CrmRecord.local_kind.startswith("call."),
                    CrmRecord.local_id == interaction_id,
                )
            )
            done = {row.local_kind.removeprefix("call."): row.remote_id for row in rows}
        return StoredSteps(self, interaction_id, done)

    async def _ticket(self, data: dict[str, Any]) -> Ref:
        ticket = ticket_push(data)
        ref = await self._known("ticket", ticket.ticket_id)
        if ref is None:
            ref = await self.connector.push_ticket(ticket)
            await self._remember("ticket", ticket.ticket_id, ref)
        return ref

    async def _push(self, payload: dict[str, Any]) -> Ref:
        kind = payload["kind"]
        if kind == "ticket":
            return await self._ticket(payload["ticket"])
        if kind == "message":
            parent = await self._ticket(payload["ticket"])
            return await self.connector.push_message(MessagePush(**payload["message"]), parent)
        if kind == "call":
            call = CallPush(**payload["call"])
            ref = await self._known("call", call.interaction_id)
            if ref is None:
                ref = await self.connector.push_call(call, await self._steps(call.interaction_id))
                await self._remember("call", call.interaction_id, ref)
            return ref
        raise PermanentFailure(f"unknown CRM push {kind!r}")

    async def send(self, item: Outbox) -> str | None:
        try:
            ref = await self._push(item.payload)
        except Exception as exc:
            self.health.report_failure("crm", exc)
            raise
        self.health.report_ok("crm")
        return f"{ref.type}:{ref.id}"[:255]
