"""openapi/openapi.json and openapi/schema.graphql are what the app serves (no drift)."""

from pathlib import Path

from app.export_schemas import graphql_text, openapi_text

ROOT = Path(__file__).resolve().parent.parent


def test_openapi_json_is_up_to_date() -> None:
    assert (ROOT / "openapi" / "openapi.json").read_text() == openapi_text(), \
        "run `make openapi` and commit openapi/"


def test_graphql_schema_is_up_to_date() -> None:
    assert (ROOT / "openapi" / "schema.graphql").read_text() == graphql_text(), \
        "run `make openapi` and commit openapi/"
