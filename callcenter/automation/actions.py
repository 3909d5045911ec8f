"""What a rule does, each action a JSON object with a ``type``:

    {"type": "send_email", "message": "ack_email"}
    {"type": "send_telegram", "message": "call_offer", "button": "call_me"}
    {"type": "create_callback", "note": "..."}
    {"type": "tag", "tags": ["vip"]}              (the customer's tags: tickets have none)
    {"type": "assign", "username": "ivanova"}
    {"type": "set_priority", "priority": 2}
    {"type": "webhook", "url": "https://tracker.example/hook"}
    {"type": "send_survey", "email_message": "nps_email", "telegram_message": "nps_telegram"}

Messages go to the outbox in the firing's transaction, keyed ``auto:<firing key>:<index>`` so a
firing can never queue the same message twice. An action that cannot apply (no email address,
no ticket to assign, the hourly limit of automatic emails reached) is skipped with a reason.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation import render as templates
from callcenter.automation.business_hours import BusinessHours
from callcenter.automation.callbacks import open_callback, request_callback
from callcenter.automation.conditions import InvalidRule
from callcenter.automation.models import Rule
from callcenter.automation.subjects import Subject
from callcenter.automation.surveys import SurveySigner, survey_keyboard, survey_links
from callcenter.models import (
    Channel,
    Direction,
    IdentityKind,
    Interaction,
    Outbox,
    User,
)
from callcenter.outbox import enqueue

AUTO_PREFIX = "auto:"
CALL_ME = "callme"
"""Callback data of the "call me" button, handled by the Telegram bot (``channels/telegram``)."""


@dataclass(frozen=True)
class AutomationConfig:
    hours: BusinessHours
    signer: SurveySigner
    public_url: str
    """Where customers open survey links (the web UI's public address)."""
    emails_per_hour: int = 5
    """Automatic emails to one address in an hour; more are skipped (mail loops)."""


class Skipped(Exception):
    """The action does not apply to this subject; the reason goes to the firing log."""


@dataclass
class ActionRun:
    session: AsyncSession
    rule: Rule
    subject: Subject
    config: AutomationConfig
    now: datetime
    firing_key: str
    index: int

    @property
    def dedupe_key(self) -> str:
        return f"{AUTO_PREFIX}{self.firing_key}:{self.index}"

    def render(self, message: str, part: str, extra: dict[str, Any] | None = None) -> str:
        variables = self.subject.variables(self.config.hours.zone) | (extra or {})
        return templates.render(
            self.rule.templates, message, part, self.subject.customer.language, variables
        )

    def queue(self, channel: str, recipient: str, payload: dict[str, Any]) -> Outbox:
        ticket = self.subject.ticket
        item = enqueue(
            self.session,
            channel=channel,
            recipient=recipient,
            payload=payload,
            dedupe_key=self.dedupe_key,
            ticket_id=ticket.id if ticket else None,
            not_before=self.now,
        )
        item.created_at = self.now
        return item


async def _recent_auto_emails(run: ActionRun, address: str) -> int:
    return await run.session.scalar(
        select(func.count())
        .select_from(Outbox)
        .where(
            Outbox.channel == "email",
            Outbox.recipient == address,
            Outbox.dedupe_key.startswith(AUTO_PREFIX),
            Outbox.created_at > run.now - timedelta(hours=1),
        )
    )


async def _in_reply_to(run: ActionRun) -> str | None:
    """The Message-ID of the customer's newest email on the ticket, to thread the answer."""
    if run.subject.ticket is None:
        return None
    return await run.session.scalar(
        select(Interaction.external_id)
        .where(
            Interaction.ticket_id == run.subject.ticket.id,
            Interaction.channel == Channel.EMAIL,
            Interaction.direction == Direction.INBOUND,
            Interaction.external_id.is_not(None),
        )
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(1)
    )


async def _email(run: ActionRun, message: str, extra: dict[str, Any] | None = None) -> dict:
    identity = run.subject.identity(IdentityKind.EMAIL)
    if identity is None:
        raise Skipped("the customer has no email address")
    address = identity.value
    sent = await _recent_auto_emails(run, address)
    if sent >= run.config.emails_per_hour:
        raise Skipped(f"{sent} automatic emails to {address} in the last hour: limit reached")
    subject_line = " ".join(run.render(message, "subject", extra).split())
    has_html = templates.has(run.rule.templates, message, "html")
    ticket = run.subject.ticket
    payload: dict[str, Any] = {
        "to": address,
        "to_name": run.subject.customer.display_name,
        "subject": subject_line,
        "text": run.render(message, "text", extra).strip() + "\n",
        "html": run.render(message, "html", extra).strip() if has_html else None,
        "ticket_id": ticket.id if ticket else None,
        "auto": True,
    }
    in_reply_to = await _in_reply_to(run)
    if in_reply_to:
        payload["in_reply_to"] = in_reply_to
    item = run.queue("email", address, payload)
    await run.session.flush()
    return {"outbox_id": item.id, "to": address}


async def _telegram(
    run: ActionRun,
    message: str,
    reply_markup: dict[str, Any] | None,
    extra: dict[str, Any] | None = None,
) -> dict:
    identity = run.subject.identity(IdentityKind.TELEGRAM)
    if identity is None:
        raise Skipped("the customer has no linked Telegram")
    ticket = run.subject.ticket
    payload: dict[str, Any] = {
        "chat_id": int(identity.value),
        "text": run.render(message, "text", extra).strip(),
        "ticket_id": ticket.id if ticket else None,
    }
    if reply_markup is not None:
        payload["reply_markup"] = reply_markup
    item = run.queue("telegram", identity.value, payload)
    await run.session.flush()
    return {"outbox_id": item.id, "chat_id": payload["chat_id"]}


async def send_email(run: ActionRun, spec: dict[str, Any]) -> dict:
    return await _email(run, spec["message"])


async def send_telegram(run: ActionRun, spec: dict[str, Any]) -> dict:
    markup = None
    if spec.get("button") == "call_me":
        label = run.render(spec["message"], "button").strip()
        markup = {"inline_keyboard": [[{"text": label, "callback_data": CALL_ME}]]}
    return await _telegram(run, spec["message"], markup)


async def create_callback(run: ActionRun, spec: dict[str, Any]) -> dict:
    subject = run.subject
    pending = await open_callback(run.session, subject.customer.id)
    if pending is not None:
        raise Skipped(f"callback {pending.id} for this customer is already waiting")
    phone = subject.identity(IdentityKind.PHONE)
    request = await request_callback(
        run.session,
        customer_id=subject.customer.id,
        ticket_id=subject.ticket.id if subject.ticket else None,
        phone=subject.caller_number or (phone.value if phone else ""),
        channel=subject.channel or "call",
        due_at=run.now,
        note=spec.get("note", ""),
        queue=(subject.call.queue or "") if subject.call else "",  # the abandoned call's queue
    )
    return {"callback_id": request.id, "phone": request.phone}


async def tag(run: ActionRun, spec: dict[str, Any]) -> dict:
    customer = run.subject.customer
    added = [t for t in spec["tags"] if t not in (customer.tags or [])]
    customer.tags = [*(customer.tags or []), *added]
    return {"added": added}


async def assign(run: ActionRun, spec: dict[str, Any]) -> dict:
    ticket = run.subject.ticket
    if ticket is None:
        raise Skipped("no ticket to assign")
    user = await run.session.scalar(
        select(User).where(User.username == spec["username"], User.active)
    )
    if user is None:
        raise Skipped(f"no active user {spec['username']!r}")
    ticket.assignee_id = user.id
    return {"assignee_id": user.id}


async def set_priority(run: ActionRun, spec: dict[str, Any]) -> dict:
    ticket = run.subject.ticket
    if ticket is None:
        raise Skipped("no ticket to prioritise")
    ticket.priority = spec["priority"]
    return {"priority": ticket.priority}


async def webhook(run: ActionRun, spec: dict[str, Any]) -> dict:
    subject = run.subject
    body = {
        "rule": run.rule.name,
        "trigger": subject.trigger,
        "event": subject.key,
        "customer_id": subject.customer.id,
        "ticket_id": subject.ticket.id if subject.ticket else None,
        "at": run.now.isoformat(),
    }
    item = run.queue("webhook", spec["url"], {"url": spec["url"], "body": body})
    await run.session.flush()
    return {"outbox_id": item.id}


async def _last_inbound_channel(run: ActionRun) -> str | None:
    channel = await run.session.scalar(
        select(Interaction.channel)
        .where(
            Interaction.customer_id == run.subject.customer.id,
            Interaction.direction == Direction.INBOUND,
        )
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(1)
    )
    return channel.value if channel else None


async def send_survey(run: ActionRun, spec: dict[str, Any]) -> dict:
    """The NPS question in the channel the customer used last, else Telegram, else email.

    After calls the phone survey is the telephony's own (an IVR step when enabled), so a
    customer who last called gets the survey in Telegram or by email.
    """
    ticket = run.subject.ticket
    if ticket is None:
        raise Skipped("no ticket to survey")
    round_ = ticket.reopened_count
    order = ["telegram", "email"]
    last = await _last_inbound_channel(run)
    if last in order:
        order.remove(last)
        order.insert(0, last)
    signer = run.config.signer
    reasons = []
    for channel in order:
        try:
            if channel == "telegram":
                markup = survey_keyboard(signer, ticket.id, round_)
                result = await _telegram(run, spec["telegram_message"], markup)
            else:
                links = survey_links(signer, run.config.public_url, ticket.id, round_)
                result = await _email(run, spec["email_message"], {"survey": {"links": links}})
        except Skipped as exc:
            reasons.append(str(exc))
            continue
        return {**result, "channel": channel, "round": round_}
    raise Skipped("; ".join(reasons))


Action = Callable[[ActionRun, dict[str, Any]], Awaitable[dict]]

ACTIONS: dict[str, Action] = {
    "send_email": send_email,
    "send_telegram": send_telegram,
    "create_callback": create_callback,
    "tag": tag,
    "assign": assign,
    "set_priority": set_priority,
    "webhook": webhook,
    "send_survey": send_survey,
}


def _need(spec: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = spec.get(key)
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise InvalidRule(f"{where}: {key!r} must be a {kind.__name__}")
    return value


def _need_message(spec: dict[str, Any], key: str, parts: tuple[str, ...], rule: Any) -> None:
    where = f"action {spec['type']}"
    message = _need(spec, key, str, where)
    for part in parts:
        if not templates.has(rule, message, part):
            raise InvalidRule(f"{where}: no {part} template for message {message!r}")


def validate_actions(actions: Any, rule_templates: dict[str, str]) -> list[dict[str, Any]]:
    """The actions if well-formed and their messages have templates; InvalidRule otherwise."""
    if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
        raise InvalidRule("actions must be a list of objects")
    for spec in actions:
        kind = spec.get("type")
        if kind not in ACTIONS:
            raise InvalidRule(f"unknown action {kind!r}; known: {', '.join(ACTIONS)}")
        where = f"action {kind}"
        if kind == "send_email":
            _need_message(spec, "message", ("subject", "text"), rule_templates)
        elif kind == "send_telegram":
            button = spec.get("button")
            if button not in (None, "call_me"):
                raise InvalidRule(f"{where}: unknown button {button!r}; known: call_me")
            parts = ("text", "button") if button else ("text",)
            _need_message(spec, "message", parts, rule_templates)
        elif kind == "send_survey":
            _need_message(spec, "email_message", ("subject", "text"), rule_templates)
            _need_message(spec, "telegram_message", ("text",), rule_templates)
        elif kind == "tag":
            tags = _need(spec, "tags", list, where)
            if not tags or not all(isinstance(t, str) and t.strip() for t in tags):
                raise InvalidRule(f"{where}: 'tags' must be a list of non-empty strings")
        elif kind == "assign":
            _need(spec, "username", str, where)
        elif kind == "set_priority":
            _need(spec, "priority", int, where)
        elif kind == "webhook":
            url = urlsplit(_need(spec, "url", str, where))
            if url.scheme not in ("http", "https") or not url.hostname:
                raise InvalidRule(f"{where}: 'url' must be an http or https address")
        elif kind == "create_callback" and "note" in spec:
            _need(spec, "note", str, where)
    return actions
