"""One test per real-world mail shape in fixtures/ (what an agent or the router relies on)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest

from callcenter.channels.email.parse import ParsedEmail, parse_email

FIXTURES = Path(__file__).parent / "fixtures"
MSK = dt.timezone(dt.timedelta(hours=3))


def parse(name: str, **options) -> ParsedEmail:
    return parse_email((FIXTURES / name).read_bytes(), **options)


def test_plain_utf8_russian():
    mail = parse("plain_utf8_russian.eml")
    assert mail.message_id == "1715598190.123456789@f123.i.mail.ru"
    assert not mail.message_id_synthesised
    assert mail.subject == "Где мой заказ №12345?"
    assert (mail.from_name, mail.from_address) == ("Иван Петров", "Ivan.Petrov@mail.ru")
    assert mail.to == ("support@shop.example",)
    assert mail.date == dt.datetime(2024, 5, 13, 14, 3, 10, tzinfo=MSK)
    assert "не пришёл" in mail.text and mail.text_charset == "utf-8"
    assert mail.text_trimmed.endswith("где он сейчас?")  # "С уважением," block cut
    assert not mail.auto_submitted and not mail.is_bounce and mail.defects == ()


def test_koi8r_subject_and_body():
    mail = parse("koi8r_subject_body.eml")
    assert mail.subject == "Возврат товара по заказу 777"
    assert mail.from_name == "Сергей Иванов"
    assert mail.text_charset == "koi8-r"
    assert "Хочу вернуть утюг" in mail.text
    assert mail.text_trimmed.endswith("Как оформить возврат?")  # "-- " signature cut


def test_cp1251_body_without_declared_charset_is_recovered():
    mail = parse("cp1251_undeclared.eml")
    assert mail.text_charset == "cp1251"
    assert mail.text.startswith("Здравствуйте. Просим выставить счёт")
    assert "\ufffd" not in mail.text
    assert mail.subject == "Счёт на оплату"  # raw 8-bit header bytes, also cp1251


def test_ascii_without_any_content_type():
    mail = parse("ascii_no_charset.eml")
    assert mail.text_charset == "ascii"
    assert "order 4711 ships" in mail.text
    assert mail.date == dt.datetime(2024, 5, 16, 8, 0, tzinfo=dt.UTC)  # "-0000" read as UTC


def test_hostile_html_is_sanitised_and_both_alternatives_kept():
    mail = parse("alternative_hostile_html.eml")
    assert mail.text.startswith("Здравствуйте! Посмотрите мой заказ.")
    assert "<script>" in (mail.html or "")  # the original is kept as received
    safe = mail.html_sanitized or ""
    for hostile in ("<script", "onerror", "onload", "javascript:", "url(", "<iframe", "<form"):
        assert hostile not in safe.lower()
    assert ' src="https://tracker.example.net' not in safe
    assert 'data-remote-src="https://tracker.example.net/open.gif?id=42"' in safe
    assert mail.has_remote_images
    assert 'href="https://shop.example/orders/12345"' in safe  # ordinary links survive
    assert "color:#333" in safe


def test_attachment_with_russian_rfc2231_filename():
    mail = parse("attachment_rfc2231_russian.eml")
    [attachment] = mail.attachments
    assert attachment.filename == "Счёт №123 от 15.05.2024 для ООО «Ромашка».pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.data is not None and attachment.data.startswith(b"%PDF-1.4")
    assert attachment.size == len(attachment.data)
    assert attachment.sha256 == hashlib.sha256(attachment.data).hexdigest()
    assert mail.text.strip() == "Добрый день! Счёт во вложении."


def test_attachment_over_the_limit_is_described_not_kept():
    mail = parse("attachment_rfc2231_russian.eml", max_attachment_bytes=10)
    [attachment] = mail.attachments
    assert attachment.data is None
    assert attachment.skipped_reason == "larger than 10 bytes"
    assert attachment.size == 77 and len(attachment.sha256) == 64


def test_inline_image_referenced_by_content_id():
    mail = parse("inline_image.eml")
    assert mail.attachments == ()
    [image] = mail.inline_images
    assert (image.content_id, image.content_type, image.filename) == (
        "photo-1@icloud.example",
        "image/png",
        "IMG_0001.png",
    )
    assert image.data is not None and image.data.startswith(b"\x89PNG")
    assert 'src="cid:photo-1@icloud.example"' in (mail.html_sanitized or "")
    assert not mail.has_remote_images
    assert mail.text_from_html and mail.text == "Вот фото брака:"


def test_truncated_multipart_keeps_what_arrived():
    mail = parse("truncated_multipart.eml")
    assert mail.text.strip() == "Документы по заказу 555 во вложении."
    [attachment] = mail.attachments
    assert attachment.filename == "scan.bin" and 0 < attachment.size < 2048
    assert any("CloseBoundaryNotFound" in defect for defect in mail.defects)


def test_gmail_reply_with_quoted_russian_history():
    mail = parse("gmail_reply_russian.eml")
    assert mail.in_reply_to == "ticket-12345-2@shop.example"
    assert mail.references == ("ticket-12345-1@shop.example", "ticket-12345-2@shop.example")
    assert mail.subject == "Re: Заказ №12345 передан в доставку"
    assert "> Ваш заказ №12345" in mail.text  # the original keeps the history
    assert mail.text_trimmed == "Спасибо, получил! Но в коробке не хватает зарядки."


def test_outlook_reply():
    mail = parse("outlook_reply.eml")
    assert mail.text_charset == "cp1251"
    assert mail.from_address == "M.Sidorova@vector.example"
    assert mail.subject == "RE: Подтвердите адрес доставки заказа 9876"
    assert mail.date == dt.datetime(2024, 5, 14, 12, 34, 56, tzinfo=dt.UTC)
    assert mail.text_trimmed == (
        "Добрый день!\n\nДа, адрес доставки верный: Москва, ул. Ленина, д. 1, кв. 2."
    )


def test_auto_reply_is_flagged():
    mail = parse("auto_replied.eml")
    assert mail.auto_submitted and not mail.is_bounce
    assert "auto-submitted:auto-replied" in mail.auto_reasons
    assert "null-return-path" in mail.auto_reasons


def test_out_of_office_with_x_autoreply():
    mail = parse("out_of_office.eml")
    assert mail.auto_submitted and mail.auto_reasons == ("x-autoreply",)
    assert mail.subject == "Автоответ: я в отпуске"
    assert mail.from_name == "Павел Овчинников"


def test_mailing_list_is_automatic():
    mail = parse("mailing_list.eml")
    assert mail.auto_submitted and not mail.is_bounce
    assert mail.auto_reasons == ("list-id", "list-unsubscribe")


def test_dsn_bounce_names_the_failed_recipient():
    mail = parse("dsn_bounce.eml")
    assert mail.is_bounce and mail.auto_submitted
    assert mail.failed_recipients == ("nobody@example.org",)  # "delayed" one is not failed
    assert "report:delivery-status" in mail.auto_reasons
    assert "User unknown" in mail.text


def test_mail_without_message_id_gets_a_stable_content_id():
    raw = (FIXTURES / "no_message_id.eml").read_bytes()
    mail = parse_email(raw)
    assert mail.message_id_synthesised
    assert mail.message_id.startswith("sha256:") and len(mail.message_id) == 7 + 64
    relayed = b"Received: by another.relay.example; Mon, 20 May 2024 00:00:00 +0300\r\n" + raw
    assert parse_email(relayed).message_id == mail.message_id
    edited = raw.replace("Казань".encode(), "Самару".encode())
    assert parse_email(edited).message_id != mail.message_id


def test_hostile_from_name_and_crlf_attempts_stay_inert_text():
    mail = parse("hostile_from_name.eml")
    assert mail.from_name == '"><img src=x onerror=alert(1)>'  # text; templates escape it
    assert mail.from_address == "Attacker@evil.example"
    assert mail.subject == "Hello Bcc: victim@example.com body"
    assert mail.reply_to == ("reply@evil.example",)  # the encoded CRLF added no recipient
    for value in (mail.subject, mail.from_name):
        assert "\r" not in value and "\n" not in value


def test_unknown_charset_name_is_decoded_not_dropped():
    mail = parse("unknown_charset.eml")
    assert mail.text.startswith("Отчёт кассы за 20 мая") and mail.text_charset == "cp1251"
    assert mail.subject == "Отчёт"  # =?ansi?q?...?= encoded word
    assert any("unknown charset 'ansi'" in defect for defect in mail.defects)


def test_declared_utf8_that_is_really_cp1251():
    mail = parse("utf8_declared_cp1251_body.eml")
    assert mail.text.startswith("Заказ получила, всё в порядке") and mail.text_charset == "cp1251"
    assert any("declared charset 'utf-8'" in defect for defect in mail.defects)


def test_yandex_reply_from_an_idn_domain():
    mail = parse("yandex_reply_idn.eml")
    assert mail.from_address == "Info@xn----7sbajacrnj9aqp5czc.xn--p1ai"  # магазин-цветов.рф
    assert mail.text_trimmed == "Здравствуйте, а можно поменять цвет на синий?"


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.eml")), ids=lambda p: p.name)
def test_every_fixture_has_clean_header_text(path: Path):
    mail = parse_email(path.read_bytes())
    for value in (mail.subject, mail.from_name, mail.message_id, *mail.to):
        assert not any(ch in value for ch in "\r\n\x00\ufffd")
    assert mail.date is None or mail.date.tzinfo is not None
