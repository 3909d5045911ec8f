"""parse_email on hand-made edge cases the fixtures do not cover."""

from __future__ import annotations

import pytest

from callcenter.channels.email.charsets import codec_for
from callcenter.channels.email.parse import EmailRejected, parse_email


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"", "empty"), (b" \r\n\t\n", "empty"), ("From: a@b\n\nx", "not-bytes")],
)
def test_not_an_email_is_rejected_with_a_reason(raw, reason):
    with pytest.raises(EmailRejected) as caught:
        parse_email(raw)
    assert caught.value.reason == reason


def test_bytes_without_any_header_are_rejected():
    with pytest.raises(EmailRejected) as caught:
        parse_email(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR binary junk")
    assert caught.value.reason == "no-headers"


def test_lf_only_mail_with_raw_utf8_headers():
    raw = "From: Иван <ivan@example.ru>\nSubject: Привет\n\nТекст\n".encode()
    mail = parse_email(raw)
    assert (mail.from_name, mail.from_address, mail.subject) == (
        "Иван",
        "ivan@example.ru",
        "Привет",
    )
    assert mail.text == "Текст\n"


def test_raw_cp1251_display_name_is_recovered():
    raw = b"From: " + "Иван Петров".encode("cp1251") + b" <ivan@example.ru>\n\nx"
    assert parse_email(raw).from_name == "Иван Петров"


def test_garbage_headers_and_nul_bytes_keep_the_rest():
    raw = (
        b"From: a@example.com\r\nX-Junk: \x00\x01\xff\xfe\r\n: no name\r\n"
        b"Subject: still here\r\n\r\nbody \x00 text"
    )
    mail = parse_email(raw)
    assert mail.subject == "still here"
    assert mail.text == "body  text"  # NUL is dropped: databases refuse it in text


def test_multipart_without_boundary_is_read_as_text():
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nplain words\r\n"
    mail = parse_email(raw)
    assert "plain words" in mail.text
    assert any("without parts" in defect for defect in mail.defects)


def test_deeply_nested_multipart_does_not_crash():
    depth = 200
    head = "".join(
        f'Content-Type: multipart/mixed; boundary="b{n}"\r\n\r\n--b{n}\r\n' for n in range(depth)
    )
    raw = ("From: a@example.com\r\n" + head + "Content-Type: text/plain\r\n\r\ndeep\r\n").encode()
    mail = parse_email(raw)
    assert any("nesting deeper" in defect for defect in mail.defects)


def test_forwarded_message_stays_an_attachment():
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n"
        b"--X\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
        b"--X\r\nContent-Type: message/rfc822\r\n\r\n"
        b"From: b@example.com\r\nSubject: original\r\n\r\ninner text\r\n--X--\r\n"
    )
    mail = parse_email(raw)
    assert mail.text.strip() == "see below"
    [forwarded] = mail.attachments
    assert forwarded.filename == "original.eml" and forwarded.content_type == "message/rfc822"
    assert b"inner text" in (forwarded.data or b"")


def test_attachment_filename_cannot_carry_a_path_or_bidi_trick():
    raw = (
        b"From: a@example.com\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="..\\\\..\\\\evil\xe2\x80\xaefdp.exe"\r\n\r\nMZ'
    )
    [attachment] = parse_email(raw).attachments
    assert attachment.filename == "evilfdp.exe"


def test_x_failed_recipients_header_counts_as_failed():
    raw = (
        b"From: Mail Delivery System <mailer-daemon@mx.example>\r\n"
        b"X-Failed-Recipients: Gone@Example.com\r\n\r\nfailed"
    )
    mail = parse_email(raw)
    assert mail.is_bounce and mail.failed_recipients == ("Gone@example.com",)


def test_auto_submitted_no_is_a_person():
    mail = parse_email(b"From: a@example.com\r\nAuto-Submitted: no\r\n\r\nhi")
    assert not mail.auto_submitted and mail.auto_reasons == ()


def test_message_ids_are_normalised():
    raw = (
        b"From: a@example.com\r\nMessage-ID:   <abc@example.com>  (comment)\r\n"
        b"In-Reply-To: <p1@example.com> <p2@example.com>\r\n"
        b"References: <r1@example.com>\r\n <r2@example.com>\r\n\r\nx"
    )
    mail = parse_email(raw)
    assert mail.message_id == "abc@example.com"
    assert mail.in_reply_to == "p1@example.com"
    assert mail.references == ("r1@example.com", "r2@example.com")


def test_unparseable_date_is_none():
    mail = parse_email(b"From: a@example.com\r\nDate: yesterday-ish\r\n\r\nx")
    assert mail.date is None


def test_content_id_without_brackets_still_makes_an_inline_image():
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/related; boundary=R\r\n\r\n"
        b'--R\r\nContent-Type: text/html\r\n\r\n<img src="cid:logo">\r\n'
        b"--R\r\nContent-Type: image/gif\r\nContent-ID: logo\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAAAAACw=\r\n--R--\r\n"
    )
    mail = parse_email(raw)
    [image] = mail.inline_images
    assert image.content_id == "logo" and image.data == b"GIF89a\x01\x00\x01\x00\x00\x00\x00,"
    assert mail.attachments == ()


@pytest.mark.parametrize(
    ("declared", "codec"),
    [("Windows-1251", "cp1251"), ("KOI8-R", "koi8-r"), ("utf8", "utf-8"), ("UTF-16", "utf-16"),
     ("x-cp1251", "cp1251"), ("ansi", None), ("unknown-8bit", None), ("hex", None),
     ("base64", None), ("rot13", None), ("unicode_escape", None), ("idna", None), ("", None)],
)  # fmt: skip
def test_declared_charset_names(declared: str, codec: str | None):
    assert codec_for(declared) == codec


def test_cleaning_twice_keeps_the_remote_image_marker_and_nothing_dangerous() -> None:
    from callcenter.channels.email.sanitize import sanitize_html

    once, remote = sanitize_html('<p>Hi <img src="https://tracker.example/x.png"></p>')
    twice, _ = sanitize_html(once)
    assert remote and twice == once
    assert 'data-remote-src="https://tracker.example/x.png"' in twice
    forged, _ = sanitize_html('<img data-remote-src="javascript:alert(1)" src="cid:a">')
    assert "javascript" not in forged
