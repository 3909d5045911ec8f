"""The real mail servers the email tests run against: Dovecot (IMAP) and aiosmtpd (SMTP)."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import pytest

from callcenter.channels.email.parse import parse_email
from tests.services import dovecot
from tests.services.dovecot import running_dovecot
from tests.services.smtp import running_smtp

FIXTURES = Path(__file__).parent / "fixtures"


async def test_dovecot_returns_appended_mail():
    mails = [
        (FIXTURES / name).read_bytes() for name in ("koi8r_subject_body.eml", "dsn_bounce.eml")
    ]
    async with running_dovecot() as server:
        for raw in mails:
            server.append(raw)
        client = server.connect()
        try:
            status, count = client.select("INBOX")
            assert (status, count) == ("OK", [b"2"])
            fetched = []
            for number in (b"1", b"2"):
                status, data = client.fetch(number, "(RFC822)")
                assert status == "OK"
                fetched.append(data[0][1])
        finally:
            client.logout()
    assert fetched == mails  # byte for byte, KOI8-R included
    assert parse_email(fetched[0]).subject == "Возврат товара по заказу 777"
    assert parse_email(fetched[1]).failed_recipients == ("nobody@example.org",)


def _reply() -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Магазин <support@shop.example>"
    message["To"] = "Иван <ivan@example.ru>"
    message["Subject"] = "Ваш заказ №12345"
    message.set_content("Здравствуйте! Заказ передан в доставку.")
    return message


async def test_smtp_server_records_and_survives_an_outage():
    async with running_smtp() as server:
        await aiosmtplib.send(_reply(), hostname=server.host, port=server.port, timeout=10)
        [received] = await server.wait_for(1)
        assert received.mail_from == "support@shop.example"
        assert received.rcpt_tos == ("ivan@example.ru",)
        arrived = email.message_from_bytes(received.content, policy=policy.default)
        assert arrived["Subject"] == "Ваш заказ №12345"
        assert "Заказ передан" in arrived.get_content()

        server.stop()
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await aiosmtplib.send(_reply(), hostname=server.host, port=server.port, timeout=5)
        server.start()
        await aiosmtplib.send(_reply(), hostname=server.host, port=server.port, timeout=10)
        assert len(await server.wait_for(2)) == 2


def test_missing_dovecot_is_an_error_not_a_skip(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(dovecot.shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(RuntimeError, match="apt-get install dovecot-imapd"):
        dovecot.start_dovecot()
