"""The rules pages: admins list, disable, enable and edit texts (validated, audited); the firing
log with its filters; nobody else gets in; template text is shown, never run as markup."""

from __future__ import annotations

import html
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from callcenter.automation.defaults import install_default_rules
from callcenter.automation.models import Rule, RuleFiring
from callcenter.automation.rules import list_rules
from callcenter.models import AuditLog
from tests.web.helpers import HTML, Visitor

SignIn = Callable[[str], Awaitable[Visitor]]
KEY = "apology_email.ru.subject"


@pytest.fixture
async def rules(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Rule]:
    async with sessions() as db, db.begin():
        await install_default_rules(db)  # the migrations may have added them already
        return {rule.name: rule for rule in await list_rules(db)}


async def _rule(sessions: async_sessionmaker[AsyncSession], name: str) -> Rule:
    async with sessions() as db:
        return (await db.scalars(select(Rule).where(Rule.name == name))).one()


async def _audit(sessions: async_sessionmaker[AsyncSession]) -> list[AuditLog]:
    async with sessions() as db:
        return list(await db.scalars(select(AuditLog).where(AuditLog.action == "rule.update")))


async def _page(who: Visitor, path: str) -> str:
    response = await who.get(path, headers=HTML)
    assert response.status == 200, (path, response.status)
    return await response.text()


async def test_admin_sees_every_rule_with_state_trigger_and_last_firing(
    signed_in: SignIn, rules: dict[str, Rule], sessions: async_sessionmaker[AsyncSession]
) -> None:
    async with sessions() as db, db.begin():
        db.add(
            RuleFiring(
                rule_id=rules["ack_new_request"].id,
                key="ack:1",
                trigger="ticket_created",
                outcome="done",
                at=datetime(2025, 11, 14, 11, 23, tzinfo=UTC),
            )
        )
    root = await signed_in("root")
    page = await _page(root, "/admin/rules")
    assert 'href="/admin/rules"' in page  # the nav link
    for name in rules:
        assert f'data-rule="{name}"' in page
    row = re.search(r'data-rule="ack_new_request">(.*?)</tr>', page, re.S)
    assert row and "включено" in row[1] and "ticket_created" in row[1]
    assert "14.11.2025 14:23:00" in row[1]  # Moscow time
    unanswered = re.search(r'data-rule="telegram_unanswered_2h">(.*?)</tr>', page, re.S)
    assert unanswered and "через 120 мин без ответа" in unanswered[1] and "ни разу" in unanswered[1]


async def test_admin_disables_and_enables_a_rule_and_both_are_audited(
    signed_in: SignIn, rules: dict[str, Rule], sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await signed_in("root")
    rule_id = rules["ack_new_request"].id
    response = await root.post_form(f"/admin/rules/{rule_id}/enabled", {"enabled": "0"})
    assert response.status == 303
    assert (await _rule(sessions, "ack_new_request")).enabled is False
    assert "выключено" in await _page(root, f"/admin/rules/{rule_id}")
    await root.post_form(f"/admin/rules/{rule_id}/enabled", {"enabled": "1"})
    assert (await _rule(sessions, "ack_new_request")).enabled is True
    changes = [(e.actor, e.details["enabled"]) for e in await _audit(sessions)]
    assert changes == [("root", {"from": True, "to": False}), ("root", {"from": False, "to": True})]


async def test_admin_edits_a_russian_text_and_sees_the_preview(
    signed_in: SignIn, rules: dict[str, Rule], sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await signed_in("root")
    rule_id = rules["telegram_unanswered_2h"].id
    page = await _page(root, f"/admin/rules/{rule_id}")
    assert f'name="template:{KEY}"' in page and 'name="template:apology_email.en.subject"' in page
    assert "Извините за ожидание [#1042]" in page  # the shipped text, previewed

    new = "Простите, {{ customer.name }}, ждём ответа по #{{ ticket.id }}"
    response = await root.post_form(f"/admin/rules/{rule_id}/templates", {f"template:{KEY}": new})
    assert response.status == 303
    saved = await _rule(sessions, "telegram_unanswered_2h")
    assert saved.templates[KEY] == new
    assert (
        saved.templates["apology_email.en.subject"]
        == rules["telegram_unanswered_2h"].templates["apology_email.en.subject"]
    )
    page = await _page(root, response.headers["Location"])
    assert "Сохранено." in page and "Простите, Иван Петров, ждём ответа по #1042" in page
    (entry,) = await _audit(sessions)
    assert entry.actor == "root" and entry.details["templates"] == [KEY]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Заказ {{ ticket.id ", "line 1"),
        ("Заказ {{ order.number }}", "order"),
        ("{% for x in %}", "line 1"),
    ],
)
async def test_a_broken_template_is_refused_with_a_clear_message_and_nothing_changes(
    signed_in: SignIn,
    rules: dict[str, Rule],
    sessions: async_sessionmaker[AsyncSession],
    source: str,
    message: str,
) -> None:
    root = await signed_in("root")
    before = rules["telegram_unanswered_2h"]
    response = await root.post_form(
        f"/admin/rules/{before.id}/templates",
        {f"template:{KEY}": source, "template:call_offer.ru.button": "Перезвоните"},
    )
    assert response.status == 400
    page = await response.text()
    error = re.search(r'id="form-error"[^>]*>(.*?)</p>', page, re.S)
    assert error and "Не сохранено" in error[1] and KEY in error[1] and message in error[1]
    assert html.escape(source, quote=False) in page  # the admin's text is kept to fix it
    after = await _rule(sessions, "telegram_unanswered_2h")
    assert after.templates == before.templates
    assert await _audit(sessions) == []


async def test_an_unknown_template_name_is_refused(
    signed_in: SignIn, rules: dict[str, Rule], sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await signed_in("root")
    before = rules["ack_new_request"]
    response = await root.post_form(
        f"/admin/rules/{before.id}/templates", {"template:ack_email.de.subject": "Hallo"}
    )
    assert response.status == 400
    assert "ack_email.de.subject" in await response.text()
    assert (await _rule(sessions, "ack_new_request")).templates == before.templates


async def test_hostile_template_text_is_shown_inert(
    signed_in: SignIn, rules: dict[str, Rule], sessions: async_sessionmaker[AsyncSession]
) -> None:
    root = await signed_in("root")
    rule_id = rules["telegram_unanswered_2h"].id
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)"> {{ ticket.id }}'
    response = await root.post_form(
        f"/admin/rules/{rule_id}/templates", {"template:apology_email.ru.html": hostile}
    )
    assert response.status == 303
    page = await _page(root, f"/admin/rules/{rule_id}")
    assert "<script>alert(1)" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # A sandbox escape attempt is refused and never runs.
    escape = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    response = await root.post_form(
        f"/admin/rules/{rule_id}/templates", {"template:apology_email.ru.text": escape}
    )
    assert response.status == 400
    assert (
        "__subclasses__"
        not in (await _rule(sessions, "telegram_unanswered_2h")).templates["apology_email.ru.text"]
    )


async def test_the_firing_log_filters_by_rule_and_day_and_pages(
    signed_in: SignIn, rules: dict[str, Rule], sessions: async_sessionmaker[AsyncSession]
) -> None:
    ack, nps = rules["ack_new_request"], rules["nps_after_solved"]
    async with sessions() as db, db.begin():
        for n in range(55):
            db.add(
                RuleFiring(
                    rule_id=ack.id,
                    key=f"ack:{n}",
                    trigger="ticket_created",
                    outcome="done",
                    details=[{"n": n}],
                    at=datetime(2025, 11, 14, 10, n, tzinfo=UTC),
                )
            )
        db.add(
            RuleFiring(
                rule_id=nps.id,
                key="nps:1",
                trigger="ticket_solved",
                outcome="partial",
                at=datetime(2025, 11, 10, 9, 0, tzinfo=UTC),
            )
        )
    root = await signed_in("root")

    def rows(page: str) -> list[str]:
        body = page.split('id="firings"', 1)[1]
        return re.findall(r"<code>(\[.*?\])</code>", body)

    first = await _page(root, f"/admin/rules?rule={ack.id}")
    assert len(rows(first)) == 50 and "ticket_solved" not in first.split('id="firings"')[1]
    older = re.search(r'id="older" href="([^"]+)"', first)
    assert older
    second = await _page(root, html.unescape(older[1]))
    assert len(rows(second)) == 5 and 'id="older"' not in second

    day = await _page(root, "/admin/rules?from=2025-11-10&to=2025-11-10")
    log = day.split('id="firings"', 1)[1]
    assert "ticket_solved" in log and "ticket_created" not in log
    none = await _page(root, f"/admin/rules?rule={nps.id}&from=2025-11-11")
    assert "Срабатываний нет." in none


@pytest.mark.parametrize("name", ["anna", "sveta"])
async def test_agents_and_supervisors_get_403(
    signed_in: SignIn, rules: dict[str, Rule], sessions: async_sessionmaker[AsyncSession], name: str
) -> None:
    who = await signed_in(name)
    rule_id = rules["ack_new_request"].id
    for path in ("/admin/rules", f"/admin/rules/{rule_id}"):
        response = await who.get(path, headers=HTML)
        assert response.status == 403, path
        assert 'href="/admin/rules"' not in await response.text()
    response = await who.post_form(f"/admin/rules/{rule_id}/enabled", {"enabled": "0"})
    assert response.status == 403
    response = await who.post_form(
        f"/admin/rules/{rule_id}/templates", {"template:ack_email.ru.subject": "x"}
    )
    assert response.status == 403
    assert (await _rule(sessions, "ack_new_request")).enabled is True
    assert await _audit(sessions) == []
