"""The rules shipped with callcenter, on by default; admins may disable them or edit their
texts, and installing again never overwrites those edits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callcenter.automation.models import Rule
from callcenter.automation.render import default_templates

DEFAULT_RULES: tuple[dict[str, Any], ...] = (
    {
        "name": "ack_new_request",
        "title": "Подтверждение нового запроса по email",
        "trigger": "ticket_created",
        "conditions": {"channel": ["email", "telegram"], "has_email": True},
        "actions": [{"type": "send_email", "message": "ack_email"}],
        "templates": "ack",
    },
    {
        "name": "telegram_unanswered_2h",
        "title": "Telegram без ответа 2 часа: извинение по email и предложение перезвонить",
        "trigger": "ticket_unanswered",
        "delay_seconds": 2 * 3600,
        "conditions": {"channel": ["telegram"]},
        "actions": [
            {"type": "send_email", "message": "apology_email"},
            {"type": "send_telegram", "message": "call_offer", "button": "call_me"},
        ],
        "templates": "unanswered",
    },
    {
        "name": "call_summary",
        "title": "Итоги звонка по email после разговора",
        "trigger": "wrap_up_saved",
        "conditions": {"has_email": True},
        "actions": [{"type": "send_email", "message": "summary_email"}],
        "templates": "call_summary",
    },
    {
        "name": "abandoned_call_callback",
        "title": "Пропущенный звонок: задача перезвонить и сообщение в Telegram",
        "trigger": "call_abandoned",
        "conditions": {},
        "actions": [
            {"type": "create_callback", "note": "Пропущенный звонок"},
            {"type": "send_telegram", "message": "callback_promise"},
        ],
        "templates": "abandoned",
    },
    {
        "name": "nps_after_solved",
        "title": "Опрос NPS после решения обращения",
        "trigger": "ticket_solved",
        "conditions": {},
        "actions": [
            {
                "type": "send_survey",
                "email_message": "nps_email",
                "telegram_message": "nps_telegram",
            }
        ],
        "templates": "nps",
    },
)


def default_rule_rows() -> list[dict[str, Any]]:
    """Column values of the default rules, templates read from ``templates/``."""
    return [
        {
            **rule,
            "templates": default_templates(rule["templates"]),
            "delay_seconds": rule.get("delay_seconds", 0),
            "enabled": True,
            "builtin": True,
            "position": 10 * (index + 1),
        }
        for index, rule in enumerate(DEFAULT_RULES)
    ]


async def install_default_rules(session: AsyncSession) -> list[Rule]:
    """Add the default rules that are missing (by name); returns the ones added."""
    known = set(await session.scalars(select(Rule.name)))
    added = [Rule(**row) for row in default_rule_rows() if row["name"] not in known]
    session.add_all(added)
    await session.flush()
    return added
