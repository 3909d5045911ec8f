"""What admins do with rules: list, disable, edit texts (validated, audited); the defaults."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.conditions import InvalidRule
from callcenter.automation.defaults import install_default_rules
from callcenter.automation.engine import Engine
from callcenter.automation.models import Rule
from callcenter.automation.render import TemplateError
from callcenter.automation.rules import list_firings, list_rules, update_rule
from callcenter.db import create_engine, session_factory
from callcenter.migrate import upgrade_async
from callcenter.models import AuditLog, Role, User
from tests.automation.helpers import email_message, outbox_rows, receive
from tests.dbs import database


async def _ack_rule(sessions: async_sessionmaker[AsyncSession]) -> Rule:
    async with sessions() as session:
        return next(r for r in await list_rules(session) if r.name == "ack_new_request")


async def _admin(sessions: async_sessionmaker[AsyncSession]) -> User:
    async with sessions() as session, session.begin():
        admin = User(username="boss", role=Role.ADMIN)
        session.add(admin)
    return admin


async def _new_request(sessions, engine: Engine, n: int) -> None:  # type: ignore[no-untyped-def]
    for event in (await receive(sessions, email_message(f"Заказ {50000 + n}", f"<r{n}@x>"))).events:
        await engine.handle(event)


async def test_the_default_rules_are_listed_in_order_and_enabled(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    async with sessions() as session:
        rules = await list_rules(session)
    assert [(r.name, r.trigger, r.enabled) for r in rules] == [
        ("ack_new_request", "ticket_created", True),
        ("telegram_unanswered_2h", "ticket_unanswered", True),
        ("call_summary", "wrap_up_saved", True),
        ("abandoned_call_callback", "call_abandoned", True),
        ("nps_after_solved", "ticket_solved", True),
    ]
    assert rules[1].delay_seconds == 7200


async def test_a_disabled_rule_does_not_fire_and_the_change_is_audited(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    admin, rule = await _admin(sessions), await _ack_rule(sessions)
    async with sessions() as session, session.begin():
        await update_rule(session, rule.id, actor=admin, enabled=False)
    await _new_request(sessions, engine, 1)
    assert await outbox_rows(sessions) == []
    async with sessions() as session:
        entry = await session.scalar(select(AuditLog))
    assert (entry.action, entry.actor, entry.target_id) == ("rule.update", "boss", str(rule.id))
    assert entry.details["enabled"] == {"from": True, "to": False}


async def test_an_edited_template_is_used_and_keeps_the_other_texts(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    admin, rule = await _admin(sessions), await _ack_rule(sessions)
    text = "Спасибо, {{ customer.name }}! Ответим по обращению {{ ticket.id }} до конца дня."
    async with sessions() as session, session.begin():
        await update_rule(session, rule.id, actor=admin, templates={"ack_email.ru.text": text})
    await _new_request(sessions, engine, 2)
    [row] = await outbox_rows(sessions)
    assert row.payload["text"].startswith("Спасибо, Иван Петров! Ответим по обращению")
    assert "Мы получили ваш запрос" in row.payload["html"]
    async with sessions() as session:
        entry = await session.scalar(select(AuditLog))
    assert entry.details["templates"] == ["ack_email.ru.text"]


@pytest.mark.parametrize(
    ("edit", "error", "message"),
    [
        ({"templates": {"ack_email.ru.text": "{% if %}"}}, TemplateError, "line 1"),
        ({"templates": {"ack_email.ru.text": "{{ custmer.name }}"}}, TemplateError, "custmer"),
        ({"templates": {"ack.text": "x"}}, TemplateError, "must look like"),
        ({"conditions": {"weather": ["sunny"]}}, InvalidRule, "unknown condition 'weather'"),
        ({"conditions": {"channel": ["fax"]}}, InvalidRule, "unknown value(s) fax"),
        ({"actions": [{"type": "send_email", "message": "nope"}]}, InvalidRule, "no subject"),
        ({"actions": [{"type": "webhook", "url": "ftp://x"}]}, InvalidRule, "http or https"),
        ({"actions": [{"type": "launch_rocket"}]}, InvalidRule, "unknown action"),
    ],
)
async def test_a_bad_edit_is_refused_with_a_clear_error_and_changes_nothing(
    sessions: async_sessionmaker[AsyncSession], engine: Engine, edit, error, message
) -> None:  # type: ignore[no-untyped-def]
    rule = await _ack_rule(sessions)
    async with sessions() as session, session.begin():
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            await update_rule(session, rule.id, actor=None, **edit)
    after = await _ack_rule(sessions)
    assert (after.templates, after.conditions, after.actions) == (
        rule.templates,
        rule.conditions,
        rule.actions,
    )
    async with sessions() as session:
        assert await session.scalar(select(AuditLog)) is None


async def test_installing_the_defaults_again_keeps_admin_edits(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    rule = await _ack_rule(sessions)
    async with sessions() as session, session.begin():
        await update_rule(session, rule.id, actor=None, enabled=False)
        assert await install_default_rules(session) == []
    assert (await _ack_rule(sessions)).enabled is False


async def test_a_rule_that_breaks_is_logged_as_failed_and_others_still_fire(
    sessions: async_sessionmaker[AsyncSession], engine: Engine
) -> None:
    async with sessions() as session, session.begin():
        session.add(
            Rule(
                name="broken",
                trigger="ticket_created",
                actions=[{"type": "send_email", "message": "gone"}],
                position=1,
            )
        )
    await _new_request(sessions, engine, 3)
    assert len(await outbox_rows(sessions)) == 1
    async with sessions() as session:
        ack, broken = await list_firings(session)  # newest first
    assert ack.outcome == "done"
    assert (
        broken.outcome == "failed" and "no template gone.ru.subject" in broken.details[0]["error"]
    )


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_the_migration_installs_the_default_rules(backend: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    async with database(backend, tmp_path) as url:
        await upgrade_async(url)
        db = create_engine(url)
        try:
            async with session_factory(db)() as session:
                rules = await list_rules(session)
        finally:
            await db.dispose()
    assert len(rules) == 5 and all(r.enabled and r.builtin for r in rules)
    assert "Ответ пришлём в течение 2 часов." in rules[0].templates["ack_email.ru.text"]
