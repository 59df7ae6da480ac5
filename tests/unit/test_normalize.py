import pytest

from app.domain.shared.normalize import (
    EmailError,
    PhoneError,
    _validated_email,
    fold_for_search,
    local_time,
    normalize_email,
    normalize_name,
    normalize_phone,
    timezone_for_phone,
)


@pytest.mark.parametrize("raw", ["8 (495) 123-45-67", "+7 495 1234567", "84951234567",
                                 "+7(495)123-45-67", "7 495 123 45 67", "0495 123 45 67",
                                 "(0495) 123-45-67"])
def test_russian_formats_resolve_to_one_number(raw: str) -> None:
    assert normalize_phone(raw, "RU") == "+74951234567"


def test_region_resolves_national_format() -> None:
    assert normalize_phone("(212) 555-0100", "US") == "+12125550100"
    assert normalize_phone("010 123456", "AM") == "+37410123456"


@pytest.mark.parametrize("raw", ["", "12", "not a phone", "+7 495 12", "0123", "00495 123 45 67"])
def test_invalid_phone_is_refused(raw: str) -> None:
    with pytest.raises(PhoneError):
        normalize_phone(raw, "RU")


def test_timezone_follows_the_phone() -> None:
    assert timezone_for_phone("+74951234567") == "Europe/Moscow"
    assert timezone_for_phone("+37410123456") == "Asia/Yerevan"


def test_local_time_uses_the_zone() -> None:
    from datetime import UTC, datetime

    assert local_time("Asia/Yerevan", datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) == \
        "2026-01-01T16:00:00+04:00"
    assert local_time(None, datetime(2026, 1, 1, tzinfo=UTC)) is None


def test_email_is_validated_and_lowercased() -> None:
    assert normalize_email(" Ivan.Petrov@Example.COM ") == "ivan.petrov@example.com"
    with pytest.raises(ValueError):
        normalize_email("ivan@")


def test_names_are_nfc_and_single_spaced() -> None:
    decomposed = "Nguye\u0302\u0303n"  # e + circumflex + tilde as combining marks
    assert normalize_name(f"  {decomposed}   Văn ") == "Nguyễn Văn"


@pytest.mark.parametrize(("text", "folded"), [
    ("Ёлкин ИВАН", "елкин иван"),
    ("Արամ ՊԵՏՐՈՍՅԱՆ", "արամ պետրոսյան"),
    ("Nguyễn Văn Đức", "nguyen van duc"),
    ("José Ñúñez", "jose nunez"),
    ("Əliyev Şəhriyar Məmmədova", "eliyev sehriyar memmedova"),
])
def test_search_folding_ignores_case_and_accents_in_every_script(text: str, folded: str) -> None:
    assert fold_for_search(text) == folded


def test_a_time_zone_name_too_long_for_a_file_is_just_invalid() -> None:
    from app.domain.shared.normalize import is_valid_timezone
    from app.domain.tasks.agenda import zone

    name = "Europe/" + "x" * 300  # ZoneInfo raises OSError (file name too long)
    assert is_valid_timezone(name) is False
    assert zone(name) is None


@pytest.mark.parametrize("raw", [
    "Some.One@Mail.RU", " x@gmail.com ", "a..b@mail.ru", "a@test", "user+tag@Example.COM",
    "ivan@пример.рф", "айвн@mail.ru", ".a@b.com", "a.@b.com", "a@b", "a@-b.com", "a@b..com",
    "a@localhost", "a@example.invalid", '"quoted"@x.com', "a@b.c", "x" * 65 + "@mail.ru",
    "a@xn--80ak6aa92e.com", "a@ab--cd.com", "a@123.456", "a@mail.ru.", "a b@mail.ru",
    "a@@mail.ru", "@mail.ru", "a@", "o'brien@mail.ru", "a@sub.onion", "x" * 64 + "@" + "d" * 63
    + ".com", "a@" + "d" * 64 + ".com", "y@" + ".".join(["d" * 60] * 5) + ".com"])
def test_the_fast_email_path_agrees_with_the_validator(raw: str) -> None:
    """`normalize_email` answers an ASCII dot-atom at a known domain without the validator:
    the answer (or the refusal) is the validator's own."""
    try:
        expected: str | None = _validated_email(raw.strip())
    except EmailError:
        expected = None
    for _ in range(2):  # the second time the domain is cached
        try:
            got: str | None = normalize_email(raw)
        except EmailError:
            got = None
        assert got == expected
