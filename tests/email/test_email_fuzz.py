"""parse_email never raises anything but EmailRejected, and rejects only non-emails."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callcenter.channels.email.parse import EmailRejected, ParsedEmail, parse_email

FIXTURES = sorted((Path(__file__).parent / "fixtures").glob("*.eml"))
RAW = [path.read_bytes() for path in FIXTURES]
# "parser-failure" is the last-resort net for stdlib crashes: the fuzzer must never reach it.
ACCEPTED_REJECTIONS = {"empty", "no-headers"}
# EMAIL_FUZZ_EXAMPLES=20000 for a deeper run than the suite's default.
FUZZ = settings(
    max_examples=int(os.environ.get("EMAIL_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


def check(raw: bytes) -> None:
    try:
        mail = parse_email(raw, max_attachment_bytes=512)
    except EmailRejected as rejected:
        assert rejected.reason in ACCEPTED_REJECTIONS, rejected
        return
    assert isinstance(mail, ParsedEmail)
    assert mail.message_id
    for value in (mail.subject, mail.from_name, *mail.to, *mail.cc):
        assert "\r" not in value and "\n" not in value
    for part in mail.attachments + mail.inline_images:
        assert part.data is None or len(part.data) <= 512


@FUZZ
@given(st.binary(max_size=2048))
def test_any_bytes(raw: bytes):
    check(raw)


@st.composite
def mutated_fixture(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(RAW)))
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, max(len(data) - 1, 0)))
        action = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "splice"]))
        if action == "flip" and data:
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(
                st.sampled_from([b"\r\n", b"\n\n", b"--", b"=?", b"?=", b";", b'"', b"\x00"])
                | st.binary(min_size=1, max_size=16)
            )
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 64))]
        elif action == "truncate":
            del data[position:]
        else:
            other = draw(st.sampled_from(RAW))
            data[position:position] = other[: draw(st.integers(0, len(other)))]
    return bytes(data)


@FUZZ
@given(mutated_fixture())
def test_mutated_fixtures(raw: bytes):
    check(raw)


HEADER_NAMES = (
    "From To Cc Subject Reply-To Message-ID References In-Reply-To Date Content-Type "
    "Content-Disposition Content-Transfer-Encoding Auto-Submitted Precedence"
).split()


ENCODED_WORDS = st.builds(
    "=?{}?{}?{}?=".format,
    st.sampled_from(["utf-8", "koi8-r", "windows-1251", "ansi", "utf-7", "unicode_escape", "hex"]),
    st.sampled_from("BQbq"),
    st.text(alphabet="=ABCDEFabcdef0123456789_+/", max_size=30),
)
HEADER_VALUES = st.lists(
    st.text(max_size=30) | ENCODED_WORDS | st.sampled_from(['"', "<", ">", "@", ",", ";", "*="]),
    max_size=6,
).map("".join)


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(HEADER_NAMES), HEADER_VALUES), min_size=1, max_size=8),
    st.binary(max_size=256),
)
def test_hostile_header_values(fields: list[tuple[str, str]], body: bytes):
    head = "".join(f"{name}: {value}\r\n" for name, value in fields)
    check(head.encode("utf-8", "surrogatepass") + b"\r\n" + body)
