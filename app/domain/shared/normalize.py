"""Normalizers for what people type: phones, emails, names and search text."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import timezone as phone_timezone

# Letters that Unicode does not decompose into a base letter plus a mark.
_STROKE_LETTERS = str.maketrans({"đ": "d", "ł": "l", "ø": "o", "ħ": "h", "ı": "i", "ß": "ss",
                                 "æ": "ae", "œ": "oe", "ŧ": "t", "ð": "d", "þ": "th", "ə": "e"})


class PhoneError(ValueError):
    pass


class EmailError(ValueError):
    pass


def normalize_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = unicodedata.normalize("NFC", " ".join(value.split()))
    return value or None


@lru_cache(maxsize=1)
def _fold_table() -> dict[int, str | None]:
    """Every combining mark (dropped) and the stroke letters (spelled out), for one
    `str.translate`: ~70 ms to build once, then C speed instead of a Python test per
    character."""
    table: dict[int, str | None] = {cp: None for cp in range(0x110000)
                                    if unicodedata.combining(chr(cp))}
    table.update(_STROKE_LETTERS)
    return table


def fold_for_search(value: str) -> str:
    """Case- and accent-insensitive form used both to store and to query search text.

    Done in Python (not with the server's lower()/unaccent) so the result does not depend on
    the database collation: Cyrillic, Armenian and Vietnamese fold the same everywhere."""
    folded = unicodedata.normalize("NFKD", value.casefold())
    return " ".join(folded.translate(_fold_table()).split())


def normalize_phone(raw: str, region: str) -> str:
    """E.164 for a phone typed in any common format; `region` resolves national formats."""
    candidate = raw.strip()
    if not candidate:
        raise PhoneError("phone number is empty")
    try:
        parsed = phonenumbers.parse(candidate, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number: {raw!r}") from exc
    # A number is valid exactly when it has a type (libphonenumber's is_valid_number and
    # number_type run the same pattern match); the type is kept for the time zone lookup.
    kind = phonenumbers.number_type(parsed)
    if kind == _UNKNOWN:
        # The region's own trunk prefix (8 495 … in RU) is handled by libphonenumber. People
        # also type an area code with the 0 trunk prefix of most of the world (0495 … for a
        # Moscow number): try once without that 0, in the same region.
        retry = _without_zero_trunk_prefix(candidate, region)
        if retry is None:
            raise PhoneError(f"not a valid phone number for region {region.upper()}: {raw!r}")
        parsed, kind = retry
    e164: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    _remember_parsed(e164, parsed, kind)
    return e164


_UNKNOWN = phonenumbers.PhoneNumberType.UNKNOWN
Typed = tuple[phonenumbers.PhoneNumber, int]

# The numbers just normalized, with their type, by their E.164: the card's time zone is
# looked up for the first phone right after, and parsing and matching the number again
# cost as much as the lookup.
_PARSED: dict[str, Typed] = {}


def _remember_parsed(e164: str, parsed: phonenumbers.PhoneNumber, kind: int) -> None:
    if len(_PARSED) >= 4096:
        _PARSED.clear()
    _PARSED[e164] = (parsed, kind)


def _without_zero_trunk_prefix(candidate: str, region: str) -> Typed | None:
    digits = "".join(ch for ch in candidate if ch.isdigit())
    if candidate.lstrip().startswith("+") or not digits.startswith("0") \
            or digits.startswith("00"):
        return None
    try:
        parsed = phonenumbers.parse(digits[1:], region.upper())
    except phonenumbers.NumberParseException:
        return None
    kind = phonenumbers.number_type(parsed)
    return None if kind == _UNKNOWN else (parsed, kind)


def uri_user(number: str) -> str:
    """The number inside a `tel:` or `sip:`/`sips:` URI, as cloud PBXes and SIP trunks send
    caller ids (`sip:+74951234567@pbx.example;user=phone`, `tel:+7-495-123-45-67`,
    `sip:101@pbx` for an extension); any other text is returned as it is."""
    scheme, colon, rest = number.partition(":")
    if not colon or scheme.strip().lower() not in {"tel", "sip", "sips"}:
        return number
    return rest.split("@", 1)[0].split(";", 1)[0].strip()


def try_normalize_phone(raw: str, region: str) -> str | None:
    try:
        return normalize_phone(raw, region)
    except PhoneError:
        return None


def timezone_for_phone(e164: str, preferred: str | None = None) -> str | None:
    """The time zone of a phone number when it has exactly one zone. A number valid in several
    zones (a Russian mobile spans eleven) takes `preferred`, the business's own zone, when it
    is one of them, and otherwise stays unknown rather than guessing."""
    known = _PARSED.get(e164)
    if known is None:
        parsed = phonenumbers.parse(e164, None)
        known = parsed, phonenumbers.number_type(parsed)
    zones = [z for z in _time_zones(*known) if z != "Etc/Unknown"]
    if len(zones) == 1:
        return zones[0]
    return preferred if preferred in zones else None


def _time_zones(parsed: phonenumbers.PhoneNumber, kind: int) -> tuple[str, ...]:
    """`phonenumbers.timezone.time_zones_for_number` with the number's type already known:
    a number of a non-geographical type (a mobile) has its country's zones, whatever its
    digits, so those are looked up once per country code."""
    if kind == _UNKNOWN:
        return ()
    if not phonenumbers.is_number_type_geographical(kind, parsed.country_code):
        return _country_zones(parsed.country_code, parsed)
    return tuple(phone_timezone.time_zones_for_geographical_number(parsed))


_COUNTRY_ZONES: dict[int, tuple[str, ...]] = {}


def _country_zones(country_code: int, parsed: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    zones = _COUNTRY_ZONES.get(country_code)
    if zones is None:
        zones = _COUNTRY_ZONES[country_code] = tuple(
            phone_timezone.time_zones_for_number(parsed))
    return zones


# An ASCII dot-atom local part: what email-validator accepts as it is (its case is folded
# below); anything else goes through the whole validator.
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


@lru_cache(maxsize=4096)
def _email_domain(domain: str) -> str | None:
    """The normalized domain, or None when email-validator refuses it. Domains repeat
    (gmail.com, mail.ru), so each is validated once: the validator costs ~25 µs an address,
    and a batch of 1,000 cards, an import or a web form normalizes every one."""
    try:
        return _validated_email(f"a@{domain}").split("@", 1)[1]
    except EmailError:
        return None


def _validated_email(candidate: str) -> str:
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise EmailError(str(exc)) from exc
    return result.normalized.lower()  # type: ignore[no-any-return]


def normalize_email(raw: str) -> str:
    """The address as identities hold it (lower case, the domain IDNA-normalized); the common
    case — an ASCII dot-atom at a domain already seen — without running the whole validator
    again (tests/unit/test_normalize.py checks the two agree)."""
    candidate = raw.strip()
    local, at, domain = candidate.rpartition("@")
    if at and len(local) <= 64 and len(candidate) <= 254 and _DOT_ATOM.fullmatch(local):
        normalized = _email_domain(domain)
        if normalized is not None:
            return f"{local.lower()}@{normalized}"
    return _validated_email(candidate)


def is_valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        return False
    return True


def local_time(tz_name: str | None, now: datetime) -> str | None:
    if not tz_name or not is_valid_timezone(tz_name):
        return None
    return now.astimezone(ZoneInfo(tz_name)).isoformat(timespec="seconds")
