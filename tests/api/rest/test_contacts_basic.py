from tests.conftest import Workspace


async def test_create_and_read_contact_with_normalized_phone(ws: Workspace) -> None:
    created = await ws.post("/api/v1/contacts", json={
        "first_name": "Иван", "last_name": "Петров", "phones": ["8 (495) 123-45-67"],
        "emails": ["Ivan.Petrov@Example.COM"]})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["phones"][0] == {"e164": "+74951234567", "original": "8 (495) 123-45-67",
                                 "label": None}
    assert body["emails"][0]["email"] == "ivan.petrov@example.com"
    assert body["full_name"] == "Иван Петров"
    assert body["timezone"] == "Europe/Moscow"
    assert body["local_time"] is not None
    assert created.headers["location"] == f"/api/v1/contacts/{body['id']}"
    read = await ws.get(created.headers["location"])
    assert read.status_code == 200
    assert read.headers["etag"] == '"1"'
    assert read.json()["id"] == body["id"]
