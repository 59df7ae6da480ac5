"""Writes openapi/openapi.json and openapi/schema.graphql from the app (`make openapi`)."""

from __future__ import annotations

import json
from pathlib import Path

from app.api.graphql.schema import schema
from app.config import Settings
from app.main import create_app

ROOT = Path(__file__).resolve().parent.parent


def openapi_text() -> str:
    app = create_app(Settings(database_url="postgresql://unused@localhost/unused",
                              redis_url="redis://localhost", log_json=True))
    return json.dumps(app.openapi(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def graphql_text() -> str:
    return schema.as_str() + "\n"


def main() -> None:
    (ROOT / "openapi").mkdir(exist_ok=True)
    (ROOT / "openapi" / "openapi.json").write_text(openapi_text())
    (ROOT / "openapi" / "schema.graphql").write_text(graphql_text())
    print("wrote openapi/openapi.json and openapi/schema.graphql")


if __name__ == "__main__":
    main()
