"""The address book in the API (QA: the checkout pages offer "Your addresses", the API had none): list and
save addresses, and check out to one by ``address_id``."""

from __future__ import annotations

from tests.api_user import assert_problem, bearer
from tests.integration.test_api import ADDRESS

PARIS = {"name": "Ada Lovelace", "line1": "1 rue de Rivoli", "city": "Paris", "postal_code": "75001", "country": "fr"}


async def test_a_customer_saves_addresses_once_each_and_lists_them_newest_first(client):
    headers = await bearer(client)
    assert (await client.get("/api/addresses", headers=headers)).json() == []
    london = await client.post("/api/addresses", json=ADDRESS, headers=headers)
    assert london.status_code == 201, london.text
    paris = await client.post("/api/addresses", json=PARIS, headers=headers)
    assert paris.status_code == 201 and paris.json()["country"] == "FR", paris.text  # as the checkout keeps it
    again = await client.post("/api/addresses", json=ADDRESS, headers=headers)
    assert again.json()["id"] == london.json()["id"]  # the same address is kept once
    listed = (await client.get("/api/addresses", headers=headers)).json()
    assert [a["id"] for a in listed] == [london.json()["id"], paris.json()["id"]]  # the last saved first
    assert listed[0] == {**ADDRESS, "line2": "", "region": "", "id": london.json()["id"]}

    # The checkout's own rules, as on the pages; and nobody else sees the book.
    bad = assert_problem(await client.post("/api/addresses", json={**PARIS, "country": "ZZ"}, headers=headers), 422)
    assert "country" in bad["errors"]
    assert_problem(await client.post("/api/addresses", json={**PARIS, "city": ""}, headers=headers), 400)
    other = await bearer(client, "other@example.com")
    assert (await client.get("/api/addresses", headers=other)).json() == []
    assert_problem(await client.get("/api/addresses"), 401)


async def test_checkout_ships_to_a_saved_address_by_its_id(client, skus):
    headers = await bearer(client)
    saved = (await client.post("/api/addresses", json=PARIS, headers=headers)).json()
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    body = {"shipping_method": "express", "payment": {"token": "tok_visa"}}

    neither = assert_problem(await client.post("/api/checkout", json=body, headers=keyed(headers, "a")), 422)
    assert "address_id" in neither["detail"]
    both = {**body, "address_id": saved["id"], "shipping_address": ADDRESS}
    assert_problem(await client.post("/api/checkout", json=both, headers=keyed(headers, "b")), 422)
    other = await bearer(client, "other@example.com")
    theirs = (await client.post("/api/addresses", json=ADDRESS, headers=other)).json()
    refused = assert_problem(
        await client.post("/api/checkout", json={**body, "address_id": theirs["id"]}, headers=keyed(headers, "c")), 422
    )
    assert refused["errors"] == {"address_id": "That address is not in your address book."}

    placed = await client.post("/api/checkout", json={**body, "address_id": saved["id"]}, headers=keyed(headers, "d"))
    assert placed.status_code == 201, placed.text
    shipped_to = placed.json()["shipping_address"]
    assert shipped_to == {**PARIS, "country": "FR", "line2": "", "region": ""}


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}
