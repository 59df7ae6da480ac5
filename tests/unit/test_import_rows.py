"""Row preparation for imports: pure, so checked without a database."""

from __future__ import annotations

from app.domain.imports.mapping import suggest_mapping


def test_headers_in_six_languages_are_recognized() -> None:
    headers = ["ФИО", "Teléfono", "Địa chỉ", "Email", "Şirkət", "Ծննդյան ամսաթիվ", "Notes"]
    assert suggest_mapping("contacts", headers) == {
        "ФИО": "full_name", "Teléfono": "phone", "Địa chỉ": "address.street",
        "Email": "email", "Şirkət": "company", "Ծննդյան ամսաթիվ": "birthday", "Notes": None}
