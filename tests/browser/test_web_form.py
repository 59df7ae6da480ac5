"""A person on the shop's website fills in the embedded form in a real browser (S3 step 1,
S7): the lead appears in Relata. A page on another site cannot post the form."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from tests.browser.conftest import Site
from tests.conftest import make_workspace

SUCCESS = "Thank you! We will call you within 15 minutes."


async def shop_with_form(api: httpx.AsyncClient, site: Site) -> tuple[Any, dict[str, Any]]:
    ws = await make_workspace(api)
    pipelines = (await ws.get("/api/v1/pipelines")).json()["data"]
    default = next(p for p in pipelines if p["is_default"])
    response = await ws.post("/api/v1/forms", json={
        "name": "Window order", "pipeline_id": default["id"], "allowed_origins": [site.origin],
        "success_message": SUCCESS, "fields": [
            {"name": "name", "label": "Your name", "required": True,
             "maps_to": "contact.full_name"},
            {"name": "phone", "label": "Phone", "type": "phone", "required": True,
             "maps_to": "contact.phone"},
            {"name": "wish", "label": "What would you like?", "type": "textarea"}]})
    assert response.status_code == 201, response.text
    return ws, response.json()


def page_with(api_url: str, form: dict[str, Any]) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Okna Plus</title>
    </head><body><h1>Okna Plus — windows for your dacha</h1><div id="order"></div>
    <script src="{api_url}{form['embed_url']}" data-target="#order" async></script>
    </body></html>"""


async def test_a_person_fills_in_the_form_and_the_lead_appears(
        live_api: str, sites: Callable[[], Site], browser: Any) -> None:
    shop = sites()
    async with httpx.AsyncClient(base_url=live_api) as api:
        ws, form = await shop_with_form(api, shop)
        shop.page = page_with(live_api, form)

        page = await browser.new_page()
        await page.goto(f"{shop.origin}/?utm_source=yandex&utm_campaign=spring")
        await page.get_by_label("Your name").fill("Ivan Petrov")
        await page.get_by_role("button", name="Send").click()
        # The server's 422 shows under the field it names.
        phone_error = page.locator("[data-field=phone] .relata-error")
        await phone_error.filter(has_text="is required").wait_for()
        await page.get_by_label("Phone").fill("8 (495) 123-45-67")
        await page.get_by_label("What would you like?").fill("3 windows, white")
        await page.get_by_role("button", name="Send").click()
        await page.locator(".relata-success").filter(has_text=SUCCESS).wait_for()
        await page.close()

        card = (await ws.get("/api/v1/contacts/lookup",
                             params={"phone": "+74951234567"})).json()
        assert card["full_name"] == "Ivan Petrov"
        assert card["utm"] == {"utm_source": "yandex", "utm_campaign": "spring"}
        [deal] = (await ws.get("/api/v1/deals", params={"contact_id": card["id"]})).json()[
            "data"]
        stages = {s["id"]: s["name"] for p in (await ws.get("/api/v1/pipelines")).json()[
            "data"] for s in p["stages"]}
        assert stages[deal["stage_id"]] == "New request"
        [row] = (await ws.get("/api/v1/form-submissions",
                              params={"form_id": form["id"]})).json()["data"]
        assert row["origin"] == shop.origin and row["deal_id"] == deal["id"]
        assert row["page_url"].startswith(f"{shop.origin}/?utm_source=yandex")
        assert row["data"]["wish"] == "3 windows, white"
        # The log serves an event once older transactions have ended: poll as a client does.
        items: list[dict[str, Any]] = []
        for _ in range(100):
            received = (await ws.get("/api/v1/events",
                                     params={"types": "inbox.item_received"})).json()["data"]
            items = [e for e in received if e["entity_id"] == row["inbox_item_id"]]
            if items:
                break
            await asyncio.sleep(0.05)
        [item] = items
        assert item["after"]["status"] == "accepted" and item["after"]["channel"] == "form"


async def test_a_page_on_another_site_cannot_post_the_form(
        live_api: str, sites: Callable[[], Site], browser: Any) -> None:
    shop, stranger = sites(), sites()
    async with httpx.AsyncClient(base_url=live_api) as api:
        ws, form = await shop_with_form(api, shop)
        stranger.page = page_with(live_api, form)

        page = await browser.new_page()
        await page.goto(stranger.origin)
        await page.get_by_label("Your name").fill("Mallory")
        await page.get_by_label("Phone").fill("8 (495) 765-43-21")
        await page.get_by_role("button", name="Send").click()
        status = page.locator(".relata-status").filter(has_text="could not be sent")
        await status.wait_for()
        assert await page.locator(".relata-success").count() == 0
        # A request that needs no preflight is refused by the server itself.
        answer = await page.evaluate("""async (url) => {
            const r = await fetch(url, {method: "POST", mode: "no-cors",
                body: new URLSearchParams({name: "Mallory", phone: "84957654321"})});
            return r.type; }""", f"{live_api}{form['submit_url']}")
        assert answer == "opaque"  # the page learns nothing
        await page.close()

        missing = await ws.get("/api/v1/contacts/lookup", params={"phone": "+74957654321"})
        assert missing.status_code == 404
        assert (await ws.get("/api/v1/form-submissions",
                             params={"form_id": form["id"]})).json()["data"] == []
