import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.domain.errors import InvalidEmail, InvalidPhone, InvalidTelegram
from callcenter.domain.identity import normalize_email, normalize_phone, normalize_telegram

MOBILE_CODES = ["903", "905", "910", "915", "916", "925", "926", "977", "985", "999"]


@pytest.mark.parametrize(
    "raw",
    [
        "8 (916) 123-45-67",
        "+7 916 123 45 67",
        "+7 (916) 123-45-67",
        "79161234567",
        "89161234567",
        "9161234567",
        "8-916-123-45-67",
        " +79161234567 ",
        "7 916 1234567",
    ],
)
def test_russian_formats_are_one_number(raw: str) -> None:
    assert normalize_phone(raw) == "+79161234567"


@given(
    code=st.sampled_from(MOBILE_CODES),
    subscriber=st.integers(min_value=0, max_value=9_999_999),
    style=st.sampled_from(
        [
            "8 ({c}) {a}-{b}-{d}",
            "+7 {c} {a} {b} {d}",
            "+7 ({c}) {a}-{b}-{d}",
            "7{c}{a}{b}{d}",
            "8{c}{a}{b}{d}",
            "{c}{a}{b}{d}",
            "8.{c}.{a}.{b}.{d}",
        ]
    ),
)
def test_every_written_form_normalises_to_the_same_e164(
    code: str, subscriber: int, style: str
) -> None:
    digits = f"{subscriber:07d}"
    raw = style.format(c=code, a=digits[:3], b=digits[3:5], d=digits[5:])
    assert normalize_phone(raw) == f"+7{code}{digits}"


@given(st.text(max_size=60))
def test_any_text_is_normalised_or_refused_with_invalid_phone(raw: str) -> None:
    try:
        result = normalize_phone(raw)
    except InvalidPhone as exc:
        assert exc.code == "invalid-phone"
    else:
        assert result.startswith("+") and result[1:].isdigit()


def test_foreign_numbers_keep_their_country() -> None:
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize_phone("+375 29 123-45-67") == "+375291234567"


@pytest.mark.parametrize(
    "raw", ["", "   ", "abc", "123", "+7916", "12345678901234567890", "+7 916 <script>"]
)
def test_unparseable_phones_are_refused_clearly(raw: str) -> None:
    with pytest.raises(InvalidPhone, match="phone number"):
        normalize_phone(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ivan.Petrov@Mail.RU", "ivan.petrov@mail.ru"),
        ("  olga@yandex.ru\n", "olga@yandex.ru"),
        ("info@пример.рф", "info@xn--e1afmkfd.xn--p1ai"),
        ("INFO@XN--E1AFMKFD.XN--P1AI", "info@xn--e1afmkfd.xn--p1ai"),
    ],
)
def test_emails_normalise_case_whitespace_and_idn(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "no-at-sign", "a@b", "@mail.ru", "ivan petrov@mail.ru", "x" * 400 + "@mail.ru"],
)
def test_absurd_emails_are_refused_clearly(raw: str) -> None:
    with pytest.raises(InvalidEmail, match="email"):
        normalize_email(raw)


def test_telegram_identity_is_the_numeric_id() -> None:
    assert normalize_telegram(" 123456789 ") == "123456789"
    assert normalize_telegram(42) == "42"
    for bad in ("@ivan", "", "-5", "0"):
        with pytest.raises(InvalidTelegram):
            normalize_telegram(bad)
