"""Durable call records: one Interaction (channel ``call``) and one Call row per Asterisk Linkedid.

`store_call` files a finished call under the customer owning the caller's number (a new
profile for a new number) and is idempotent per Linkedid, even when two processes race.
A caller id that is no phone number (withheld, "anonymous", an internal extension) gets a
fresh profile without any identity: grouping unrelated callers under one "unknown" profile
would mix their histories, and an agent can merge the fresh profile once the caller is known.
The raw caller id is kept on the Call row.

`CallRecorder` stores every CallEnded published on the bus (and the click-to-calls the ARI
app hands it: stasis.py), each in its own transaction, in order, and keeps records in memory
(bounded) while the database is unavailable, retrying with backoff; after each commit of a
new record it publishes CallRecorded. `recover` adds the calls that ended while AMI was down,
read from Asterisk's queue_log (queuelog.py) or CDR (cdrlog.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.outbound_calls import ClickToCallEnded, record_click_to_call
from callcenter.bus import Bus
from callcenter.channels.telephony.callrows import insert_once, stored_call
from callcenter.channels.telephony.cdrlog import CdrLog
from callcenter.channels.telephony.events import CallEnded, CallRecorded
from callcenter.channels.telephony.queuelog import QueueLog
from callcenter.db import unit_of_work
from callcenter.domain.customers import create_customer, resolve_customer
from callcenter.domain.errors import InvalidPhone
from callcenter.domain.identity import normalize_phone
from callcenter.models import (
    Call,
    CallOutcome,
    Channel,
    Direction,
    IdentityKind,
    Interaction,
    User,
)

Record = CallEnded | ClickToCallEnded
"""What the recorder stores: an inbound call, or a click-to-call the ARI app saw end."""

log = logging.getLogger(__name__)

HIDDEN_CALLER_IDS = {"", "anonymous", "unknown", "<unknown>", "restricted", "private"}


async def _agent_id(
    session: AsyncSession, interface: str | None, agents: Mapping[str, int] | None
) -> int | None:
    if not interface:
        return None
    if agents is not None:
        return agents.get(interface)
    return await session.scalar(select(User.id).where(User.sip_endpoint == interface))


def _phone(raw: str, region: str) -> str | None:
    try:
        return normalize_phone(raw, region)
    except InvalidPhone:
        return None


def _caller_name(name: str, number: str) -> str:
    """The caller id name, unless it is a placeholder or just the number again."""
    name = name.strip()
    if name.lower() in HIDDEN_CALLER_IDS or name == number.strip():
        return ""
    return name


def describe(ended: CallEnded, phone: str | None) -> str:
    """The interaction's text, as agents read it in the customer's history."""
    queue = f"в очередь {ended.queue}" if ended.queue else "без очереди"
    wait, talk = ended.wait_seconds, ended.talk_seconds
    if ended.outcome is CallOutcome.ANSWERED:
        text = f"Звонок {queue}, ожидание {wait} с, разговор {talk} с"
    elif ended.outcome is CallOutcome.ABANDONED:
        text = f"Пропущенный звонок {queue}: абонент положил трубку через {wait} с ожидания"
    elif ended.outcome is CallOutcome.TIMEOUT:
        text = f"Пропущенный звонок {queue}: никто не ответил за {wait} с"
    else:
        text = "Пропущенный звонок: абонент положил трубку, не дождавшись очереди"
    if phone is None:
        raw = ended.caller_number.strip()
        text += " (номер скрыт)" if raw.lower() in HIDDEN_CALLER_IDS else f" (номер {raw})"
    return text


async def store_call(
    session: AsyncSession,
    ended: CallEnded,
    *,
    region: str = "RU",
    agents: Mapping[str, int] | None = None,
) -> Interaction:
    """Store a finished call once per Linkedid; the caller commits.

    `agents` maps an interface (PJSIP/1001) to a user id; without it, users are looked up by
    their sip_endpoint. A second delivery returns the interaction already stored.
    """
    interaction, _ = await _store(session, ended, region, agents)
    return interaction


async def _store(
    session: AsyncSession, ended: CallEnded, region: str, agents: Mapping[str, int] | None
) -> tuple[Interaction, CallRecorded | None]:
    """The call's interaction, and the CallRecorded to publish if this call stored it."""
    existing = await stored_call(session, ended.linkedid)
    if existing is not None:
        return existing, None
    agent_id = await _agent_id(session, ended.agent_interface, agents)
    phone = _phone(ended.caller_number, region)
    name = _caller_name(ended.caller_name, ended.caller_number)
    customer_id: int | None = None
    if phone is not None:
        customer, _ = await resolve_customer(
            session, IdentityKind.PHONE, phone, display_name=name, source="call", region=region
        )
        customer_id = customer.id

    async def unknown_caller(interaction: Interaction) -> None:
        if interaction.customer_id is None:
            interaction.customer_id = (await create_customer(session, name)).id

    interaction = Interaction(
        customer_id=customer_id,
        channel=Channel.CALL,
        direction=Direction.INBOUND,
        external_id=ended.linkedid,
        text=describe(ended, phone),
        agent_id=agent_id,
        occurred_at=ended.started_at,
    )
    call = Call(
        linkedid=ended.linkedid,
        queue=ended.queue,
        agent_id=agent_id,
        agent_endpoint=ended.agent_interface,
        caller_number=ended.caller_number[:64],
        wait_seconds=ended.wait_seconds,
        talk_seconds=ended.talk_seconds,
        outcome=ended.outcome,
        started_at=ended.started_at,
        answered_at=ended.answered_at,
        ended_at=ended.ended_at,
    )
    return await insert_once(session, interaction, call, prepare=unknown_caller)


def _transient(exc: Exception) -> bool:
    """A database that is down, restarting or locked: worth retrying later."""
    if isinstance(exc, OperationalError | InterfaceError | OSError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


class CallRecorder:
    """Stores call records in order, surviving database outages: the CallEnded events of the
    bus, and the click-to-calls the ARI app hands to `record`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        region: str = "RU",
        agents: Mapping[str, int] | None = None,
        capacity: int = 10_000,
        backoff: tuple[float, float] = (0.5, 30.0),
        bus: Bus | None = None,
    ) -> None:
        """``bus``: where to publish CallRecorded (`subscribe` sets it too)."""
        self._sessions = sessions
        self._region = region
        self._agents = agents
        self._backlog: asyncio.Queue[Record] = asyncio.Queue(capacity)
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None
        self._storing = 0
        self._bus = bus

    def subscribe(self, bus: Bus) -> None:
        """Store the bus's CallEnded events and publish CallRecorded on it."""
        self._bus = bus
        bus.subscribe(CallEnded, self.record)

    async def record(self, ended: Record) -> None:
        """Queue a record; when the backlog is full this waits rather than drop anything."""
        if self._backlog.full():
            log.error("call record backlog full (%d); waiting for the database", self.pending)
        await self._backlog.put(ended)

    async def recover(self, source: QueueLog | CdrLog, members: Mapping[str, str]) -> None:
        """Store the calls queue_log or the CDR shows ended since its checkpoint, then move the
        checkpoint; ``members``: queue member name -> interface."""
        try:
            found = await asyncio.to_thread(source.read, members)
            if found is None:
                return
            ended, checkpoint = found
            for call in ended:
                await self.record(call)
            await self.drain()
            await asyncio.to_thread(source.save, checkpoint)
        except OSError as exc:
            log.error("cannot recover calls from %s: %s", source.path, exc)
            return
        if ended:
            log.info("%d call(s) that ended while disconnected read from %s", len(ended),
                     source.path)  # fmt: skip

    @property
    def pending(self) -> int:
        """Records received and not stored yet (the one being tried included)."""
        return self._backlog.qsize() + self._storing

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="call-recorder")

    async def drain(self) -> None:
        """Wait until every queued record is stored (or given up as invalid)."""
        await self._backlog.join()

    async def stop(self) -> None:
        pending = self.pending
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if pending:
            log.error("stopped with %d call records not stored", pending)

    async def _run(self) -> None:
        while True:
            ended = await self._backlog.get()
            self._storing = 1
            try:
                await self._store(ended)
            finally:
                self._storing = 0
                self._backlog.task_done()

    async def _insert(self, session: AsyncSession, ended: Record) -> CallRecorded | None:
        if isinstance(ended, ClickToCallEnded):
            _, recorded = await record_click_to_call(session, ended, self._region)
        else:
            _, recorded = await _store(session, ended, self._region, self._agents)
        return recorded

    async def _store(self, ended: Record) -> None:
        low, high = self._backoff
        delay = low
        while True:
            try:
                async with unit_of_work(self._sessions) as session:
                    recorded = await self._insert(session, ended)
                if recorded is not None and self._bus is not None:
                    self._bus.publish(recorded)
                return
            except Exception as exc:
                if not _transient(exc):
                    log.exception("call record %s cannot be stored: %r", ended.linkedid, ended)
                    return
                log.warning(
                    "database unavailable for call record %s (%s); retrying in %.1fs, "
                    "%d more waiting",
                    ended.linkedid,
                    exc.__class__.__name__,
                    delay,
                    self._backlog.qsize(),
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, high)
