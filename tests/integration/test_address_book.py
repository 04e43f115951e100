"""The address book on both engines: ``/account/addresses`` (plain forms, the same with and without
JavaScript) and ``/api/addresses``: a customer sees, adds, changes and removes their saved addresses,
an address is kept once, and another customer's address is not found."""

from __future__ import annotations

import re
from typing import Any

from tests.api_user import assert_problem, bearer
from tests.factories import make_user
from tests.shopper import ADDRESS, add_to_cart, choose_address_and_shipping, post, review, sign_in, text_of
from webshop.db.engine import ShopAlchemyConfig

BOOK = "/account/addresses"


async def saved_ids(client: Any) -> list[int]:
    """The ids of the addresses the book page lists, in its order."""
    return [int(i) for i in re.findall(r'<li id="address-(\d+)"', (await client.get(BOOK)).text)]


async def test_a_customer_adds_changes_and_removes_addresses_on_the_account_pages(
    client: Any, alchemy: ShopAlchemyConfig
) -> None:
    await make_user(alchemy, "ada@example.com", name="Ada")
    assert (await client.get(BOOK, follow_redirects=False)).status_code in (302, 303)  # signed out: sign in first
    assert (await sign_in(client, "ada@example.com")).status_code == 303
    account = await client.get("/account")
    assert f'href="{BOOK}"' in account.text
    empty = text_of((await client.get(BOOK)).text)
    assert "No saved addresses yet." in empty

    # A refused address comes back as typed, every message beside its field at once, and nothing is saved.
    refused = await post(client, BOOK, {**ADDRESS, "postal_code": "", "city": "Lon\u0007don"}, token_from=BOOK)
    assert refused.status_code == 422
    assert 'id="city-error">' in refused.text and 'id="postal_code-error">' in refused.text
    assert 'value="12 Analytical Way"' in refused.text
    assert await saved_ids(client) == []

    added = await post(client, BOOK, ADDRESS, token_from=BOOK)
    assert added.status_code == 303 and added.headers["location"] == BOOK
    page = text_of((await client.get(BOOK)).text)
    assert "The address was saved." in page and "12 Analytical Way" in page
    again = await post(client, BOOK, ADDRESS, token_from=BOOK)  # the same address is kept once
    assert again.status_code == 303
    work = {**ADDRESS, "line1": "1 Engine Yard", "postal_code": "EC1A 1BB"}
    assert (await post(client, BOOK, work, token_from=BOOK)).status_code == 303
    [newest, home] = await saved_ids(client)

    # Change one: the form shows it; a refused change comes back as typed; a good one is saved.
    edit = f"{BOOK}/{home}"
    form = await client.get(edit)
    assert form.status_code == 200 and 'value="12 Analytical Way"' in form.text
    bad = await post(client, edit, {**ADDRESS, "country": "ZZ"}, token_from=edit)
    assert bad.status_code == 422 and 'id="country-error">' in bad.text
    moved = {**ADDRESS, "line1": "7 Difference Street"}
    assert (await post(client, edit, moved, token_from=edit)).status_code == 303
    page = text_of((await client.get(BOOK)).text)
    assert "The address was changed." in page and "7 Difference Street" in page
    assert "12 Analytical Way" not in page

    # Changing one into another it already has leaves one of them.
    assert (await post(client, edit, work, token_from=edit)).status_code == 303
    assert await saved_ids(client) == [newest]

    # Removing one takes it out of the book.
    assert (await post(client, BOOK, ADDRESS, token_from=BOOK)).status_code == 303
    ids = await saved_ids(client)
    removed = await post(client, f"{BOOK}/{ids[0]}/delete", {}, token_from=BOOK)
    assert removed.status_code == 303
    page = text_of((await client.get(BOOK)).text)
    assert "The address was removed." in page and "12 Analytical Way" not in page
    assert await saved_ids(client) == ids[1:]

    # Another customer's address is not found, to see, change or remove.
    await make_user(alchemy, "bob@example.com")
    assert (await post(client, "/account/sign-out", {}, token_from="/account")).status_code == 303
    assert (await sign_in(client, "bob@example.com")).status_code == 303
    assert (await client.get(f"{BOOK}/{ids[1]}")).status_code == 404
    assert (await post(client, f"{BOOK}/{ids[1]}", ADDRESS, token_from=BOOK)).status_code == 404
    refused = await post(client, f"{BOOK}/{ids[1]}/delete", {}, token_from=BOOK)
    assert refused.status_code == 303  # as a second press of Remove: nothing removed, and it says so
    assert "That address is not in your address book (any more)." in text_of((await client.get(BOOK)).text)


async def test_the_api_reads_replaces_and_deletes_saved_addresses(client: Any, alchemy: ShopAlchemyConfig) -> None:
    headers = await bearer(client, "ada@example.com")
    saved = await client.post("/api/addresses", json=ADDRESS, headers=headers)
    assert saved.status_code == 201, saved.text
    address_id = saved.json()["id"]
    one = await client.get(f"/api/addresses/{address_id}", headers=headers)
    assert one.status_code == 200 and one.json()["line1"] == "12 Analytical Way"

    replaced = await client.put(
        f"/api/addresses/{address_id}", json={**ADDRESS, "line1": "7 Difference Street"}, headers=headers
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json() == {**one.json(), "line1": "7 Difference Street"}
    bad = await client.put(f"/api/addresses/{address_id}", json={**ADDRESS, "postal_code": ""}, headers=headers)
    assert "postal_code" in assert_problem(bad, 422)["errors"]
    listed = (await client.get("/api/addresses", headers=headers)).json()
    assert [a["line1"] for a in listed] == ["7 Difference Street"]

    other = await bearer(client, "bob@example.com")
    assert_problem(await client.get(f"/api/addresses/{address_id}", headers=other), 404)
    assert_problem(await client.put(f"/api/addresses/{address_id}", json=ADDRESS, headers=other), 404)
    assert_problem(await client.delete(f"/api/addresses/{address_id}", headers=other), 404)
    assert_problem(await client.delete(f"/api/addresses/{address_id}"), 401)

    assert (await client.delete(f"/api/addresses/{address_id}", headers=headers)).status_code == 204
    assert (await client.get("/api/addresses", headers=headers)).json() == []
    assert_problem(await client.delete(f"/api/addresses/{address_id}", headers=headers), 404)


async def test_a_checkout_whose_address_was_removed_meanwhile_asks_for_another(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int]
) -> None:
    """Removing (or merging away) the address a checkout chose, in another tab, sends that checkout back
    to the address step with the reason: not a 404 on the next step (review)."""
    await make_user(alchemy, "ada@example.com", name="Ada")
    assert (await sign_in(client, "ada@example.com")).status_code == 303
    assert (await add_to_cart(client, skus["DC-1"])).status_code == 303
    await choose_address_and_shipping(client)
    form = await review(client)
    [address_id] = await saved_ids(client)
    assert (await post(client, f"{BOOK}/{address_id}/delete", {}, token_from=BOOK)).status_code == 303

    for answer in (
        await client.get("/checkout/review", follow_redirects=False),
        await client.get("/checkout/shipping", follow_redirects=False),
        await client.post("/checkout/place", data=form, follow_redirects=False),
    ):
        assert answer.status_code in (302, 303) and answer.headers["location"] == "/checkout/address", answer.text
    page = text_of((await client.get("/checkout/address")).text)
    assert "The address you chose is no longer in your address book" in page
    assert "Where should we send it?" in page
