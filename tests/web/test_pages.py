"""Security headers, the status page, user administration, the audit log, templates, i18n."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from callcenter.config import ConfigError, Settings
from callcenter.models import AuditLog, Role, User
from callcenter.web.app import create_app
from callcenter.web.i18n import catalog, pick_language
from callcenter.web.keys import HEALTH
from callcenter.web.render import setup_templates
from tests.web.seeding import customer_with_history


def _assert_page_headers(headers) -> None:
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"


async def test_every_kind_of_response_carries_the_security_headers(signed_in, visitor) -> None:
    anonymous = visitor()
    agent = await signed_in("anna")
    for response in (
        await anonymous.get("/login"),
        await anonymous.get("/healthz"),
        await anonymous.get("/agent"),
        await anonymous.get("/static/js/events.js"),
        await agent.get("/admin/users"),
        await agent.get("/agent"),
        await agent.get("/no-such-page"),
    ):
        _assert_page_headers(response.headers)
    stream = await agent.get("/events")
    _assert_page_headers(stream.headers)
    stream.close()


async def test_healthz_is_public_and_says_nothing_more(visitor) -> None:
    response = await visitor().get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_status_shows_each_component_with_its_last_error(signed_in, app) -> None:
    health = app[HEALTH]
    health.report_ok("ami")
    health.report_failure("imap", ConnectionRefusedError("Connection refused to 127.0.0.1:993"))
    admin = await signed_in("root")
    data = await (await admin.get("/status", headers={"Accept": "application/json"})).json()
    assert set(data) == {"ami", "ari", "database", "telegram", "imap", "smtp"}
    assert data["ami"]["state"] == "ok" and data["database"]["state"] == "ok"
    assert data["imap"]["state"] == "failing"
    assert "Connection refused" in data["imap"]["last_error"]
    assert data["ari"]["state"] == "unknown"
    page = await (await admin.get("/status")).text()
    assert "Connection refused to 127.0.0.1:993" in page and "сбой" in page


async def test_an_admin_creates_and_deactivates_users_and_it_is_audited(
    signed_in, visitor, sessions, staff
) -> None:
    admin = await signed_in("root")
    response = await admin.post_form(
        "/admin/users",
        {
            "username": "olga",
            "display_name": "Ольга Смирнова",
            "role": "agent",
            "endpoint": "PJSIP/1003",
            "language": "en",
            "password": "olga-password-1",
        },
    )
    assert response.status == 303
    listing = await (await admin.get("/admin/users")).text()
    assert "Ольга Смирнова" in listing and "PJSIP/1003" in listing
    olga = visitor()
    assert (await olga.login("olga", "olga-password-1")).headers["Location"] == "/agent"
    assert "Find a customer" in await (await olga.get("/agent")).text()

    taken = await admin.post_form(
        "/admin/users",
        {"username": "olga", "role": "agent", "language": "ru", "password": "another-pass"},
    )
    assert taken.status == 400
    assert "already exists" in await taken.text()
    async with sessions() as db:
        user = await db.scalar(select(User).where(User.username == "olga"))
    assert user.role is Role.AGENT
    await admin.post_form(f"/admin/users/{user.id}/active", {"active": "0"})
    assert (await olga.get("/agent")).status == 401
    myself = await admin.post_form(f"/admin/users/{staff['root'].id}/active", {"active": "0"})
    assert myself.status == 400

    audit = await (await admin.get("/admin/audit")).text()
    for action in ("user.create", "user.deactivate", "user.login"):
        assert action in audit
    only = await (await admin.get("/admin/audit", params={"action": "user.deactivate"})).text()
    assert "user.deactivate" in only and "user.create" not in only
    async with sessions() as db:
        entry = await db.scalar(select(AuditLog).where(AuditLog.action == "user.deactivate"))
    assert entry.actor == "root" and entry.target_id == str(user.id)


async def test_supervisor_page_lists_agents(signed_in) -> None:
    page = await (await (await signed_in("sveta")).get("/supervisor")).text()
    assert "Anna" in page and "PJSIP/1002" in page and "Sveta" not in page.split("<table")[1]


async def test_customer_page_shows_identities_and_the_timeline(signed_in, sessions) -> None:
    async with sessions() as db, db.begin():
        customer = await customer_with_history(db)
    agent = await signed_in("anna")
    page = await (await agent.get(f"/customers/{customer.id}")).text()
    for text in ("Иван Петров", "+79161234567", "@ivan_petrov", "Где мой заказ?", "sales"):
        assert text in page, text
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in page
    assert "Выгрузить" not in page  # export is for supervisors and admins
    body = await agent.get("/interactions/" + page.split('src="/interactions/')[1].split('"')[0])
    csp = body.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script" not in csp and "img-src data:;" in csp
    assert body.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "<b>Заказ 123456</b>" in await body.text()


async def test_remote_images_load_only_when_asked(signed_in, sessions) -> None:
    async with sessions() as db, db.begin():
        customer = await customer_with_history(
            db, html='<p>Фото</p><img src="https://cdn.example/pixel.png" alt="x">'
        )
    agent = await signed_in("anna")
    page = await (await agent.get(f"/customers/{customer.id}")).text()
    path = page.split('src="/interactions/')[1].split('"')[0]
    blocked = await agent.get(f"/interactions/{path}")
    assert ' src="https://cdn.example' not in await blocked.text()
    shown = await agent.get(f"/interactions/{path}?images=1")
    assert 'src="https://cdn.example/pixel.png"' in await shown.text()
    assert "img-src data: https: http:" in shown.headers["Content-Security-Policy"]


def test_every_template_autoescapes() -> None:
    from aiohttp import web

    env = setup_templates(web.Application(), "Europe/Moscow")
    assert env.autoescape is True
    page = env.from_string("{{ x }}").render(x="<script>")
    assert page == "&lt;script&gt;"


def test_the_catalogs_have_the_same_keys() -> None:
    assert catalog("ru").keys() == catalog("en").keys()


def test_accept_language_picks_the_preferred_supported_language() -> None:
    assert pick_language("en-US,en;q=0.9") == "en"
    assert pick_language("de-DE,en;q=0.5,ru;q=0.7") == "ru"
    assert pick_language("fr", default="en") == "en"
    assert pick_language(None) == "ru"


def test_the_app_refuses_to_start_without_a_session_key() -> None:
    with pytest.raises(ConfigError, match="CALLCENTER_SESSION_KEY"):
        create_app(Settings(session_key=""))
    with pytest.raises(ConfigError, match="shorter than 32"):
        create_app(Settings(session_key="short"))


def test_serve_says_why_it_will_not_start(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env["CALLCENTER_DATA_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "callcenter.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "session_key is missing" in result.stderr
