"""Checkout through the API with the Stripe provider, against localstripe on 127.0.0.1, on both engines.

A token pays the order at once (201, paid, the PaymentIntent's id as the order's payment reference);
the webhook localstripe then sends (caught by a real HTTP receiver, since the app under test has no
port) is delivered to ``/api/payments/webhooks/stripe`` and changes nothing more; a forged one is 400;
a declined token is 402.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api_user import assert_problem, bearer
from tests.conftest import app_client
from tests.webhook_receiver import Receiver
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig
from webshop.db.models import Order

SECRET = "whsec_checkout_tests"
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Way", "city": "London", "postal_code": "N1", "country": "GB"}


@pytest.fixture
async def stripe_client(settings: Settings, alchemy: ShopAlchemyConfig, localstripe: str) -> AsyncIterator[Any]:
    """A client for an app whose payment provider is Stripe, pointed at localstripe."""
    async with app_client(
        settings,
        alchemy,
        payment_provider="stripe",
        stripe_secret_key="sk_test_webshop",
        stripe_webhook_secret=SECRET,
        stripe_api_base=localstripe,
    ) as client:
        try:
            yield client
        finally:
            await client.app.state.payment_provider.aclose()


async def checkout(client: Any, token: str, key: str) -> Any:
    headers = {**(await bearer(client)), "Idempotency-Key": key}
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    body = {"shipping_address": ADDRESS, "shipping_method": "standard", "payment": {"token": token}}
    return await client.post("/api/checkout", json=body, headers=headers)


async def test_a_token_pays_and_stripes_webhook_changes_nothing_more(
    stripe_client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int], localstripe: str, receiver: Receiver
) -> None:
    async with httpx.AsyncClient() as http:
        config = {"url": receiver.url, "secret": SECRET, "events[]": "payment_intent.succeeded"}
        assert (await http.post(f"{localstripe}/_config/webhooks/shop", data=config)).status_code == 200
    answer = await checkout(stripe_client, "tok_visa", f"stripe-{time.time_ns()}")
    assert answer.status_code == 201, answer.text
    order = answer.json()
    assert order["status"] == "paid"
    async with alchemy.get_session() as session:
        reference = await session.scalar(select(Order.payment_reference).where(Order.id == order["id"]))
    assert reference and reference.startswith("pi_")

    deadline = time.monotonic() + 10
    while not any(reference.encode() in body for _, _, body in receiver.requests):
        assert time.monotonic() < deadline, "localstripe's webhook did not arrive"
        await receiver.wait_for(len(receiver.requests) + 1, timeout=10)
    headers, body = next((h, b) for _, h, b in receiver.requests if reference.encode() in b)
    url = "/api/payments/webhooks/stripe"
    delivered = await stripe_client.post(url, content=body, headers={"stripe-signature": headers["stripe-signature"]})
    assert delivered.status_code == 200, delivered.text
    forged = await stripe_client.post(url, content=body, headers={"stripe-signature": "t=1,v1=00"})
    assert_problem(forged, 400)
    async with alchemy.get_session() as session:
        assert (await session.scalar(select(Order.status).where(Order.id == order["id"]))) == "paid"


async def test_a_declined_token_is_402(stripe_client: Any, skus: dict[str, int]) -> None:
    assert_problem(await checkout(stripe_client, "tok_chargeDeclined", f"stripe-{time.time_ns()}"), 402)
