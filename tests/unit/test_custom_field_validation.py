import uuid
from dataclasses import dataclass, field

import pytest

from app.domain.customfields.validation import validate_custom_fields
from app.domain.shared.errors import ValidationError


@dataclass
class Definition:
    key: str
    type: str
    options: list[str] = field(default_factory=list)
    required: bool = False


DEFS = [Definition("visits", "number"), Definition("bill", "money"),
        Definition("next_service", "date"), Definition("vip", "boolean"),
        Definition("segment", "select", ["a", "b"]), Definition("langs", "multiselect", ["ru", "en"]),
        Definition("alt_phone", "phone"), Definition("site", "url"), Definition("manager", "user"),
        Definition("seen_at", "datetime"), Definition("note", "text"),
        Definition("backup_email", "email")]


def test_valid_values_are_normalized() -> None:
    manager = uuid.uuid4()
    result = validate_custom_fields(DEFS, {
        "visits": 3, "bill": {"amount": "12.50", "currency": "eur"}, "next_service": "2026-03-01",
        "vip": True, "segment": "a", "langs": ["ru", "ru", "en"], "alt_phone": "8 495 123 45 67",
        "site": "https://example.com", "manager": str(manager),
        "seen_at": "2026-01-01T10:00:00Z", "note": "hi", "backup_email": "A@B.CO"},
        region="RU", user_ids={manager})
    assert result["bill"] == {"amount": "12.50", "currency": "EUR"}
    assert result["alt_phone"] == "+74951234567"
    assert result["langs"] == ["ru", "en"]
    assert result["backup_email"] == "a@b.co"


@pytest.mark.parametrize(("key", "value"), [
    ("visits", "three"), ("visits", True), ("bill", {"amount": "x", "currency": "EUR"}),
    ("next_service", "31/02/2026"), ("vip", "yes"), ("segment", "z"), ("langs", ["de"]),
    ("alt_phone", "12"), ("site", "ftp://x"), ("manager", str(uuid.uuid4())),
    ("seen_at", "2026-01-01T10:00:00"), ("note", 5), ("backup_email", "nope"),
])
def test_wrong_values_are_422_naming_the_field(key: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_custom_fields(DEFS, {key: value}, region="RU", user_ids=set())
    assert caught.value.errors[0]["loc"] == ["body", "custom_fields", key]


def test_unknown_and_missing_required_fields() -> None:
    with pytest.raises(ValidationError) as unknown:
        validate_custom_fields(DEFS, {"nope": 1}, region="RU")
    assert unknown.value.errors[0]["loc"] == ["body", "custom_fields", "nope"]
    with pytest.raises(ValidationError) as missing:
        validate_custom_fields([Definition("must", "text", required=True)], {}, region="RU")
    assert missing.value.errors[0]["loc"] == ["body", "custom_fields", "must"]


def test_null_removes_a_value() -> None:
    assert validate_custom_fields(DEFS, {"visits": None}, region="RU",
                                  existing={"visits": 2, "vip": True}) == {"vip": True}
