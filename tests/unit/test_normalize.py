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


def _library_zone(e164: str, preferred: str | None) -> str | None:
    """The time zone as phonenumbers' own validity and zone lookups give it."""
    from phonenumbers import parse
    from phonenumbers.timezone import time_zones_for_number

    zones = [z for z in time_zones_for_number(parse(e164, None)) if z != "Etc/Unknown"]
    return zones[0] if len(zones) == 1 else (preferred if preferred in zones else None)


@pytest.mark.parametrize(("raw", "region"), [
    ("8 (495) 123-45-67", "RU"), ("+7 916 765-43-21", "RU"), ("+7 727 258 1234", "RU"),
    ("+7 701 123 4567", "KZ"), ("(212) 555-0100", "US"), ("+1 650 253 0000", "US"),
    ("+1 416 555 0199", "US"), ("010 123456", "AM"), ("+374 91 123456", "AM"),
    ("+84 24 3825 3333", "VN"), ("+84 912 345 678", "VN"), ("+994 12 498 0000", "AZ"),
    ("+994 50 123 45 67", "AZ"), ("+34 912 345 678", "ES"), ("+44 20 7946 0958", "GB"),
    ("+44 1624 612345", "GB"), ("+61 2 9374 4000", "AU"), ("+55 11 91234 5678", "BR"),
    ("+52 55 1234 5678", "MX"), ("+800 1234 5678", "RU"), ("+7 495 12", "RU"),
    ("+1 999 555 0100", "US"), ("+44 7000 000000", "GB"), ("0495 123 45 67", "RU"),
])
def test_phone_validity_and_zone_agree_with_the_library(raw: str, region: str) -> None:
    """normalize_phone takes a number's type once (valid exactly when it has one) and the
    zone lookup reuses it: both must say what phonenumbers' own calls say."""
    import phonenumbers

    digits = "".join(ch for ch in raw if ch.isdigit())
    parsed = phonenumbers.parse(raw, region)
    valid = phonenumbers.is_valid_number(parsed) or (
        digits.startswith("0") and not raw.startswith("+")
        and phonenumbers.is_valid_number(phonenumbers.parse(digits[1:], region)))
    if not valid:
        with pytest.raises(PhoneError):
            normalize_phone(raw, region)
        return
    e164 = normalize_phone(raw, region)
    for preferred in (None, "Europe/Moscow", "America/New_York", "Asia/Almaty"):
        assert timezone_for_phone(e164, preferred) == _library_zone(e164, preferred), preferred


def test_search_folding_drops_every_combining_mark() -> None:
    """The one-table fold gives what testing each character gives, in every script."""
    import unicodedata

    from app.domain.shared.normalize import _STROKE_LETTERS

    marks = "".join(chr(cp) for cp in [*range(0x300, 0x370), 0x591, 0x5B0, 0xE48, 0x302A]
                    if unicodedata.combining(chr(cp)))  # U+034F, the grapheme joiner, is not
    text = f"Nguyễn Ёлкин Արամ Şəhriyar {marks} ﬁne Ⅻ Đức Łódź Øre Straße"
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    by_character = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    assert fold_for_search(text) == " ".join(
        by_character.translate(_STROKE_LETTERS).split())
    assert fold_for_search("Đức Łódź Øre ß") == "duc lodz ore ss"
