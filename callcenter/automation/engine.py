"""The rules engine: on each event, every enabled rule of its trigger whose conditions hold
fires once, its actions and its log entry in one transaction.

"Ticket unanswered" rules work through durable timers: a customer's message arms one per rule
(due ``delay_seconds`` after the first message still waiting for an answer), an agent's reply
cancels them, and a timer that fires checks again that the ticket is still open and unanswered.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation import timers
from callcenter.automation.actions import ACTIONS, ActionRun, AutomationConfig, Skipped
from callcenter.automation.conditions import failing_condition
from callcenter.automation.events import (
    CallAbandoned,
    CallEnded,
    SurveyAnswered,
    TicketSolved,
    WrapUpSaved,
)
from callcenter.automation.models import Rule, RuleFiring
from callcenter.automation.subjects import Subject, load_subject
from callcenter.bus import Bus
from callcenter.db import unit_of_work
from callcenter.domain.errors import DomainError
from callcenter.domain.events import AgentReplied, MessageReceived, TicketCreated
from callcenter.domain.inbox import OPEN_STATUSES
from callcenter.models import Channel, Direction, Interaction, Ticket, Timer, User, utcnow

log = logging.getLogger(__name__)

TRIGGERS = (
    "message_received",
    "ticket_created",
    "ticket_unanswered",
    "call_ended",
    "call_abandoned",
    "wrap_up_saved",
    "ticket_solved",
    "survey_answered",
)
UNANSWERED_TIMER = "rule.unanswered"
RETRIES = 3


def unanswered_prefix(ticket_id: int) -> str:
    return f"unanswered:{ticket_id}:"


async def first_unanswered(
    session: AsyncSession, ticket_id: int, channels: list[str] | None = None
) -> Interaction | None:
    """The customer's first message on the ticket after the last answer sent to them."""
    answered = await session.scalar(
        select(func.max(Interaction.occurred_at)).where(
            Interaction.ticket_id == ticket_id, Interaction.direction == Direction.OUTBOUND
        )
    )
    query = select(Interaction).where(
        Interaction.ticket_id == ticket_id, Interaction.direction == Direction.INBOUND
    )
    if answered is not None:
        query = query.where(Interaction.occurred_at > answered)
    if channels:
        query = query.where(Interaction.channel.in_(channels))
    return await session.scalar(query.order_by(Interaction.occurred_at, Interaction.id).limit(1))


class Engine:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        config: AutomationConfig,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.now = now
        self._handlers: dict[type, Callable[[AsyncSession, Any], Awaitable[None]]] = {
            MessageReceived: self._on_message,
            TicketCreated: self._on_ticket_created,
            AgentReplied: self._on_agent_replied,
            CallEnded: self._on_call_ended,
            CallAbandoned: self._on_call_abandoned,
            WrapUpSaved: self._on_wrap_up,
            TicketSolved: self._on_ticket_solved,
            SurveyAnswered: self._on_survey_answered,
        }

    @property
    def timer_handlers(self) -> dict[str, timers.TimerHandler]:
        return {UNANSWERED_TIMER: self._on_unanswered_timer}

    def subscribe(self, bus: Bus) -> Callable[[], None]:
        """Handle the bus's events; returns the call that stops it."""
        undo = [bus.subscribe(event_type, self.handle) for event_type in self._handlers]

        def unsubscribe() -> None:
            for call in undo:
                call()

        return unsubscribe

    async def handle(self, event: object) -> None:
        """Apply the rules to one event in its own transaction, retried if the database is
        briefly unavailable (firing keys make a retry harmless)."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        for attempt in range(1, RETRIES + 1):
            try:
                async with unit_of_work(self.sessions) as session:
                    await handler(session, event)
                return
            except OperationalError:
                if attempt == RETRIES:
                    raise
                log.warning("automation on %r: database error, retrying", event, exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)

    async def apply(self, session: AsyncSession, subject: Subject) -> list[RuleFiring]:
        """Fire every enabled rule of the subject's trigger whose conditions hold."""
        rules = await session.scalars(
            select(Rule)
            .where(Rule.trigger == subject.trigger, Rule.enabled)
            .order_by(Rule.position, Rule.id)
        )
        firings = []
        for rule in list(rules):
            firing = await self.fire_if(session, rule, subject)
            if firing is not None:
                firings.append(firing)
        return firings

    async def fire_if(
        self, session: AsyncSession, rule: Rule, subject: Subject
    ) -> RuleFiring | None:
        failing = failing_condition(rule.conditions, subject.facts(self.now()), self.config.hours)
        if failing is not None:
            log.debug("rule %s not fired on %s: %s does not hold", rule.name, subject.key, failing)
            return None
        return await self.fire(session, rule, subject)

    async def fire(self, session: AsyncSession, rule: Rule, subject: Subject) -> RuleFiring | None:
        """Run the rule's actions once for this subject; None if it already fired for it."""
        key = f"{rule.id}:{subject.key}"
        if await self._fired(session, key):
            return None
        now = self.now()
        values = {
            "rule_id": rule.id,
            "key": key,
            "trigger": subject.trigger,
            "ticket_id": subject.ticket.id if subject.ticket else None,
            "customer_id": subject.customer.id,
            "at": now,
        }
        try:
            async with session.begin_nested():
                firing = RuleFiring(outcome="done", details=[], **values)
                session.add(firing)
                await session.flush()
                details = []
                for index, spec in enumerate(rule.actions):
                    run = ActionRun(session, rule, subject, self.config, now, key, index)
                    try:
                        done = await ACTIONS[spec["type"]](run, spec)
                        details.append({"action": spec["type"], "status": "done", **done})
                    except Skipped as exc:
                        details.append(
                            {"action": spec["type"], "status": "skipped", "reason": str(exc)}
                        )
                firing.details = details
                firing.outcome = (
                    "done" if all(d["status"] == "done" for d in details) else "partial"
                )
                await session.flush()
        except OperationalError:
            raise  # the database, not the rule: the whole event is tried again
        except Exception as exc:
            await self._reload(session, subject)
            if isinstance(exc, IntegrityError) and await self._fired(session, key):
                return None  # another server fired it concurrently
            if isinstance(exc, DomainError):  # a misconfigured rule: the log says which
                log.warning("rule %s failed on %s: %s", rule.name, subject.key, exc)
            else:
                log.exception("rule %s failed on %s", rule.name, subject.key)
            firing = RuleFiring(
                outcome="failed", details=[{"error": f"{type(exc).__name__}: {exc}"}], **values
            )
            session.add(firing)
            await session.flush()
        log.info("rule %s fired on %s: %s", rule.name, subject.key, firing.outcome)
        return firing

    async def _fired(self, session: AsyncSession, key: str) -> bool:
        return await session.scalar(select(RuleFiring.id).where(RuleFiring.key == key)) is not None

    async def _reload(self, session: AsyncSession, subject: Subject) -> None:
        """Refresh what a rolled-back savepoint expired, so the next rule can read it."""
        for record in (subject.customer, subject.ticket, subject.interaction, subject.call):
            if record is not None:
                await session.refresh(record)

    async def _on_message(self, session: AsyncSession, event: MessageReceived) -> None:
        if event.automatic:
            return
        subject = await load_subject(
            session,
            "message_received",
            f"msg:{event.interaction_id}",
            customer_id=event.customer_id,
            ticket_id=event.ticket_id,
            interaction_id=event.interaction_id,
            channel=event.channel.value,
            intents=event.intents,
            at=event.occurred_at,
        )
        await self.apply(session, subject)
        if event.ticket_id is not None:
            await self._arm_unanswered(session, event.ticket_id)

    async def _arm_unanswered(self, session: AsyncSession, ticket_id: int) -> None:
        rules = await session.scalars(
            select(Rule).where(Rule.trigger == "ticket_unanswered", Rule.enabled)
        )
        for rule in list(rules):
            anchor = await first_unanswered(session, ticket_id, rule.conditions.get("channel"))
            if anchor is None:
                continue
            await timers.arm(
                session,
                UNANSWERED_TIMER,
                f"{unanswered_prefix(ticket_id)}{rule.id}:{anchor.id}",
                anchor.occurred_at + timedelta(seconds=rule.delay_seconds),
                {"rule_id": rule.id, "ticket_id": ticket_id, "interaction_id": anchor.id},
            )

    async def _on_unanswered_timer(
        self, session: AsyncSession, timer: Timer, now: datetime
    ) -> None:
        rule = await session.get(Rule, timer.payload["rule_id"])
        ticket = await session.get(Ticket, timer.payload["ticket_id"])
        anchor = await session.get(Interaction, timer.payload["interaction_id"])
        if rule is None or not rule.enabled or ticket is None or anchor is None:
            return
        if ticket.status not in OPEN_STATUSES:
            return
        answered = await session.scalar(
            select(
                exists().where(
                    Interaction.ticket_id == ticket.id,
                    Interaction.direction == Direction.OUTBOUND,
                    Interaction.occurred_at >= anchor.occurred_at,
                )
            )
        )
        if answered:
            return
        subject = await load_subject(
            session,
            "ticket_unanswered",
            f"unanswered:{ticket.id}:{anchor.id}",
            ticket_id=ticket.id,
            interaction_id=anchor.id,
            channel=anchor.channel.value,
            intents=tuple(anchor.intents),
            at=now,
        )
        await self.fire_if(session, rule, subject)

    async def _on_ticket_created(self, session: AsyncSession, event: TicketCreated) -> None:
        subject = await load_subject(
            session,
            "ticket_created",
            f"ticket:{event.ticket_id}",
            customer_id=event.customer_id,
            ticket_id=event.ticket_id,
            channel=event.channel.value,
        )
        await self.apply(session, subject)

    async def _on_agent_replied(self, session: AsyncSession, event: AgentReplied) -> None:
        if event.channel is not Channel.NOTE:
            await timers.cancel_prefix(session, unanswered_prefix(event.ticket_id))

    async def _on_call_ended(self, session: AsyncSession, event: CallEnded) -> None:
        subject = await load_subject(
            session,
            "call_ended",
            f"call:{event.interaction_id}",
            customer_id=event.customer_id,
            ticket_id=event.ticket_id,
            interaction_id=event.interaction_id,
            channel=Channel.CALL.value,
            at=event.at,
        )
        await self.apply(session, subject)

    async def _on_call_abandoned(self, session: AsyncSession, event: CallAbandoned) -> None:
        subject = await load_subject(
            session,
            "call_abandoned",
            f"abandoned:{event.interaction_id}",
            customer_id=event.customer_id,
            ticket_id=event.ticket_id,
            interaction_id=event.interaction_id,
            channel=Channel.CALL.value,
            caller_number=event.caller_number,
            at=event.at,
        )
        await self.apply(session, subject)

    async def _on_wrap_up(self, session: AsyncSession, event: WrapUpSaved) -> None:
        agent = await session.get(User, event.agent_id) if event.agent_id is not None else None
        wrapup = {
            "summary": event.summary,
            "disposition": event.disposition,
            "tracker_url": event.tracker_url,
            "agent_name": (agent.display_name or agent.username) if agent else "",
        }
        subject = await load_subject(
            session,
            "wrap_up_saved",
            f"wrapup:{event.interaction_id}",
            ticket_id=event.ticket_id,
            interaction_id=event.interaction_id,
            channel=Channel.CALL.value,
            extra={"wrapup": wrapup},
        )
        await self.apply(session, subject)

    async def _on_ticket_solved(self, session: AsyncSession, event: TicketSolved) -> None:
        await timers.cancel_prefix(session, unanswered_prefix(event.ticket_id))
        subject = await load_subject(
            session,
            "ticket_solved",
            "",
            customer_id=event.customer_id,
            ticket_id=event.ticket_id,
            at=event.at,
        )
        if subject.ticket is None:
            return
        subject.key = f"solved:{event.ticket_id}:{subject.ticket.reopened_count}"
        subject.channel = subject.ticket.channel.value
        await self.apply(session, subject)

    async def _on_survey_answered(self, session: AsyncSession, event: SurveyAnswered) -> None:
        subject = await load_subject(
            session,
            "survey_answered",
            f"survey:{event.answer_id}",
            customer_id=event.customer_id,
            ticket_id=event.ticket_id,
            channel=event.channel,
            extra={"survey": {"score": event.score, "channel": event.channel}},
        )
        await self.apply(session, subject)
