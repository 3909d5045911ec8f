"""What the admin UI does with rules: list them, enable or disable, edit conditions, actions
and texts (every change audited), and read the firing log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.actions import validate_actions
from callcenter.automation.conditions import InvalidRule, validate_conditions
from callcenter.automation.engine import TRIGGERS
from callcenter.automation.models import Rule, RuleFiring
from callcenter.automation.render import TemplateError, compile_template
from callcenter.domain import audit
from callcenter.domain.errors import NotFound
from callcenter.models import User

_SAMPLES: dict[str, dict[str, Any]] = {
    "message": {"text": "Где мой заказ 12345?", "channel": "telegram"},
    "call": {
        "date": "14.11.2025",
        "time": "14:23",
        "caller_number": "+79161234567",
        "queue": "support",
        "wait_seconds": 30,
        "talk_seconds": 180,
        "outcome": "answered",
    },
    "wrapup": {
        "summary": "Уточнили сроки доставки.",
        "disposition": "resolved",
        "tracker_url": "https://tracker.example/T-1",
        "agent_name": "Анна",
    },
}
_EXTRA = {
    "message_received": ("message",),
    "ticket_unanswered": ("message",),
    "call_ended": ("call",),
    "call_abandoned": ("call",),
    "wrap_up_saved": ("call", "wrapup"),
}


def sample_variables(trigger: str) -> dict[str, Any]:
    """Template variables as a rule of this trigger sees them, to check edited templates."""
    values: dict[str, Any] = {
        "customer": {"id": 1, "name": "Иван Петров", "language": "ru"},
        "ticket": {
            "id": 1042,
            "subject": "Заказ 12345",
            "status": "open",
            "channel": "telegram",
            "priority": 0,
        },
    }
    values |= {name: _SAMPLES[name] for name in _EXTRA.get(trigger, ())}
    if trigger == "ticket_solved":
        values["survey"] = {"links": [{"score": s, "url": f"https://x/{s}"} for s in range(11)]}
    elif trigger == "survey_answered":
        values["survey"] = {"score": 9, "channel": "telegram"}
    return values


async def list_rules(session: AsyncSession) -> list[Rule]:
    return list(await session.scalars(select(Rule).order_by(Rule.position, Rule.id)))


async def get_rule(session: AsyncSession, rule_id: int) -> Rule:
    rule = await session.get(Rule, rule_id)
    if rule is None:
        raise NotFound(f"no rule with id {rule_id}")
    return rule


async def list_firings(
    session: AsyncSession, *, rule_id: int | None = None, limit: int = 100
) -> list[RuleFiring]:
    """The newest firings first, of one rule or of all."""
    query = select(RuleFiring).order_by(RuleFiring.at.desc(), RuleFiring.id.desc()).limit(limit)
    if rule_id is not None:
        query = query.where(RuleFiring.rule_id == rule_id)
    return list(await session.scalars(query))


def _check_templates(trigger: str, edited: dict[str, Any]) -> None:
    sample = sample_variables(trigger)
    for key, source in edited.items():
        if not isinstance(source, str):
            raise TemplateError(f"template {key} must be text")
        try:
            compile_template(key, source).render(sample)
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(f"template {key}: {exc}") from None


async def update_rule(
    session: AsyncSession,
    rule_id: int,
    *,
    actor: User | None,
    enabled: bool | None = None,
    title: str | None = None,
    conditions: dict[str, Any] | None = None,
    actions: list[dict[str, Any]] | None = None,
    templates: dict[str, str] | None = None,
    delay_seconds: int | None = None,
) -> Rule:
    """Change a rule; ``templates`` replaces the named texts and keeps the others. A refused
    change (InvalidRule, TemplateError) changes nothing."""
    rule = await get_rule(session, rule_id)
    if rule.trigger not in TRIGGERS:
        raise InvalidRule(f"rule {rule.name} has an unknown trigger {rule.trigger!r}")
    new_templates = dict(rule.templates)
    if templates:
        _check_templates(rule.trigger, templates)
        new_templates |= templates
    new_conditions = validate_conditions(rule.conditions if conditions is None else conditions)
    new_actions = validate_actions(rule.actions if actions is None else actions, new_templates)
    if delay_seconds is not None and (isinstance(delay_seconds, bool) or delay_seconds < 0):
        raise InvalidRule("delay_seconds must be a non-negative integer")

    changes: dict[str, Any] = {}
    for name, value in (
        ("enabled", enabled),
        ("title", title),
        ("conditions", new_conditions),
        ("actions", new_actions),
        ("delay_seconds", delay_seconds),
    ):
        if value is not None and getattr(rule, name) != value:
            changes[name] = {"from": getattr(rule, name), "to": value}
            setattr(rule, name, value)
    edited = sorted(k for k in new_templates if rule.templates.get(k) != new_templates[k])
    if edited:
        changes["templates"] = edited
        rule.templates = new_templates
    if changes:
        audit.record(
            session,
            "rule.update",
            actor=actor,
            target_type="rule",
            target_id=rule.id,
            details={"rule": rule.name, **changes},
        )
        await session.flush()
    return rule
