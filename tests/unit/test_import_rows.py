"""Row preparation for imports: pure, so checked without a database."""

from __future__ import annotations

import pytest

from app.domain.imports.mapping import suggest_mapping
from app.domain.imports.rows import fast_normalize_email
from app.domain.shared.normalize import EmailError, normalize_email


@pytest.mark.parametrize("raw", [
    "Some.One@Mail.RU", " x@gmail.com ", "a..b@mail.ru", "a@test", "user+tag@Example.COM",
    "ivan@пример.рф", "айвн@mail.ru", ".a@b.com", "a.@b.com", "a@b", "a@-b.com", "a@b..com",
    "a@localhost", "a@example.invalid", '"quoted"@x.com', "a@b.c", "x" * 65 + "@mail.ru"])
def test_the_fast_email_path_agrees_with_the_validator(raw: str) -> None:
    try:
        expected: str | None = normalize_email(raw)
    except EmailError:
        expected = None
    try:
        got: str | None = fast_normalize_email(raw)
    except EmailError:
        got = None
    assert got == expected


def test_headers_in_six_languages_are_recognized() -> None:
    headers = ["ФИО", "Teléfono", "Địa chỉ", "Email", "Şirkət", "Ծննդյան ամսաթիվ", "Notes"]
    assert suggest_mapping("contacts", headers) == {
        "ФИО": "full_name", "Teléfono": "phone", "Địa chỉ": "address.street",
        "Email": "email", "Şirkət": "company", "Ծննդյան ամսաթիվ": "birthday", "Notes": None}
