"""Signing in and out: passwords, the cookie, brute-force limits, logging out everywhere."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import make_mocked_request
from sqlalchemy import select

from callcenter.models import AuditLog, User
from callcenter.web.cookies import COOKIE_NAME, SessionCodec
from callcenter.web.ratelimit import LoginLimiter
from tests.web.conftest import SESSION_KEY
from tests.web.helpers import HTML


async def test_each_role_lands_on_its_home_page(signed_in, visitor, staff) -> None:
    for name, home in (("anna", "/agent"), ("sveta", "/supervisor"), ("root", "/admin/users")):
        who = visitor()
        response = await who.login(name)
        assert response.status == 303
        assert response.headers["Location"] == home
        assert (await who.get(home)).status == 200


async def test_login_goes_back_to_the_page_asked_for_but_never_off_site(visitor, staff) -> None:
    who = visitor()
    first = await who.get("/customers/5", headers=HTML)
    assert first.headers["Location"] == "/login?next=%2Fcustomers%2F5"
    page = await (await who.get(first.headers["Location"], headers=HTML)).text()
    assert 'name="next" value="/customers/5"' in page
    await who.refresh_csrf()
    data = {"username": "anna", "password": "password-anna", "_csrf": who.csrf}
    response = await who.post("/login", data={**data, "next": "/customers/5"})
    assert response.headers["Location"] == "/customers/5"
    for hostile in ("//evil.example/", "/\\evil.example", "https://evil.example/"):
        other = visitor()
        await other.refresh_csrf()
        response = await other.post("/login", data={**data, "_csrf": other.csrf, "next": hostile})
        assert response.headers["Location"] == "/agent"


async def test_the_session_cookie_is_httponly_lax_and_encrypted(visitor, staff) -> None:
    who = visitor()
    response = await who.login("anna")
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]  # plain HTTP in the test
    assert "anna" not in cookie.value and str(staff["anna"].id) not in cookie.value[:8]
    assert SessionCodec(SESSION_KEY).decode(cookie.value)["uid"] == staff["anna"].id
    assert SessionCodec("another-key-" + "x" * 40).decode(cookie.value) is None


def test_the_cookie_is_secure_over_https() -> None:
    request = make_mocked_request("GET", "/").clone(scheme="https")
    response = __import__("aiohttp").web.Response()
    SessionCodec(SESSION_KEY).save(request, response, {"csrf": "x"})
    assert response.cookies[COOKIE_NAME]["secure"] is True


async def test_a_wrong_password_says_so_and_is_audited(visitor, staff, sessions) -> None:
    who = visitor()
    response = await who.login("anna", "wrong-password")
    assert response.status == 401
    assert "Неверное имя пользователя или пароль" in await response.text()
    assert (await who.get("/agent")).status == 401
    unknown = await who.login("nobody", "wrong-password")
    assert "Неверное имя пользователя или пароль" in await unknown.text()
    await who.login("anna")
    async with sessions() as db:
        actions = [(a.action, a.actor) for a in await db.scalars(select(AuditLog))]
    assert ("user.login_failed", "anna") in actions
    assert ("user.login_failed", "nobody") in actions
    assert ("user.login", "anna") in actions


async def test_the_eleventh_wrong_password_in_a_minute_is_refused(visitor, staff) -> None:
    who = visitor()
    for attempt in range(10):
        response = await who.login("anna", f"guess-{attempt}")
        assert response.status == 401, attempt
    eleventh = await who.login("anna", "guess-10")
    assert eleventh.status == 429
    text = await eleventh.text()
    assert "Слишком много неудачных попыток входа" in text
    # even the right password waits now, from any address; other accounts are unaffected
    assert (await visitor().login("anna")).status == 429
    assert (await visitor().login("boris")).status == 303


def test_the_limit_counts_per_address_across_accounts_and_expires() -> None:
    now = [0.0]
    limiter = LoginLimiter(account_limit=10, address_limit=30, clock=lambda: now[0])
    for i in range(30):
        assert limiter.retry_after(f"user{i}", "10.0.0.1") == 0
        limiter.failed(f"user{i}", "10.0.0.1")
    assert limiter.retry_after("someone-else", "10.0.0.1") > 0
    assert limiter.retry_after("someone-else", "10.0.0.2") == 0
    now[0] = 61.0
    assert limiter.retry_after("someone-else", "10.0.0.1") == 0


async def test_logout_ends_this_session(signed_in) -> None:
    agent = await signed_in("anna")
    response = await agent.post_form("/logout", {})
    assert response.headers["Location"] == "/login"
    assert (await agent.get("/agent")).status == 401


async def test_logout_everywhere_ends_every_session_and_stream(signed_in, app, staff) -> None:
    laptop = await signed_in("anna")
    phone = await signed_in("anna")
    stream = await phone.get("/events")
    assert stream.status == 200
    response = await laptop.post_form("/logout/everywhere", {})
    assert response.status == 303
    assert (await phone.get("/agent")).status == 401
    assert (await laptop.get("/agent")).status == 401
    # the open stream was closed by the server
    body = await asyncio.wait_for(stream.content.read(), 5)
    assert body.startswith(b"retry:")
    assert stream.content.at_eof()
    assert (await signed_in("anna")).csrf  # and a new sign-in works


async def test_a_deactivated_user_is_signed_out_and_cannot_sign_in(
    signed_in, visitor, staff, sessions
) -> None:
    agent = await signed_in("boris")
    admin = await signed_in("root")
    response = await admin.post_form(f"/admin/users/{staff['boris'].id}/active", {"active": "0"})
    assert response.status == 303
    assert (await agent.get("/agent")).status == 401
    assert (await visitor().login("boris")).status == 401
    async with sessions() as db:
        assert (await db.get(User, staff["boris"].id)).active is False


async def test_the_login_page_follows_accept_language(visitor) -> None:
    who = visitor()
    english = await who.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9,ru;q=0.5"})
    assert "Sign in" in await english.text()
    russian = await who.get("/login", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
    assert "Вход" in await russian.text()
    default = await who.get("/login", headers={"Accept-Language": "de"})
    assert "Вход" in await default.text()


async def test_the_ui_speaks_the_users_language(signed_in) -> None:
    agent = await signed_in("anna")
    assert "Поиск клиента" in await (await agent.get("/agent")).text()
    await agent.post_form("/me/language", {"language": "en"})
    assert "Find a customer" in await (await agent.get("/agent")).text()
