"""localstripe (a stateful fake Stripe, PyPI ``localstripe``) on 127.0.0.1 for the Stripe provider's tests.

Run as ``python -m tests.localstripe_server PORT``; ``localstripe`` (the fixture) starts it on a free port,
waits for it to answer and stops it after the test.

localstripe 1.15 lacks three things the real Stripe API does, which ``StripeProvider`` relies on; this
launcher adds them to localstripe's own objects, in this process only, as Stripe documents them:

* **Idempotency keys** (https://docs.stripe.com/api/idempotent_requests): a POST with an
  ``Idempotency-Key`` already seen gets the first answer again (status and body), and creates nothing.
  localstripe ignores the header.
* **Tokens on a PaymentIntent**: ``payment_method_data[type]=card&payment_method_data[card][token]=tok_...``
  (https://docs.stripe.com/api/payment_intents/create#create_payment_intent-payment_method_data-card).
  Stripe's test tokens ``tok_visa`` (pays), ``tok_chargeDeclined`` (declined) and
  ``tok_threeDSecure2Required`` (asks for 3-D Secure) become the test cards localstripe knows
  (4242 4242 4242 4242; 4000 0000 0000 0341, declined when charged; 4000 0025 0000 3155); any other
  ``tok_`` is a token made through ``POST /v1/tokens``.
* ``return_url`` on ``POST /v1/payment_intents/{id}/confirm`` (where 3-D Secure sends the shopper back):
  accepted and ignored; localstripe has no redirect page.

Its store is kept in memory only (localstripe writes every change to ``/tmp/localstripe.pickle``, which
parallel test workers would share). Checkout Sessions are not in localstripe: the provider's hosted-page
path is not covered here (tests/integration/test_stripe_provider.py says what is).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import free_port


def _patch_localstripe() -> Any:
    from localstripe import resources

    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]

    pi_cls: Any = resources.PaymentIntent
    create = pi_cls._api_create.__func__
    confirm = pi_cls._api_confirm.__func__
    test_tokens = {
        "tok_visa": "4242424242424242",
        "tok_chargeDeclined": "4000000000000341",
        "tok_threeDSecure2Required": "4000002500003155",
    }

    def card_of_token(token: str) -> str:
        if token in test_tokens:
            card = resources.Card(
                source={"object": "card", "number": test_tokens[token], "exp_month": 12, "exp_year": 2040, "cvc": "123"}
            )
            return str(card.id)
        return str(resources.Token._api_retrieve(token).card.id)

    def create_with_token(cls: Any, payment_method_data: Any = None, **data: Any) -> Any:
        if payment_method_data is not None:
            token = (payment_method_data.get("card") or {}).get("token", "")
            if payment_method_data.get("type") != "card" or not str(token).startswith("tok_"):
                raise resources.UserError(400, "Only card tokens are supported here")
            data["payment_method"] = card_of_token(str(token))
        return create(cls, **data)

    def confirm_with_return_url(cls: Any, id: str, return_url: Any = None, **kwargs: Any) -> Any:
        return confirm(cls, id, **kwargs)

    pi_cls._api_create = classmethod(create_with_token)
    pi_cls._api_confirm = classmethod(confirm_with_return_url)
    for index, (method, url, func) in enumerate(resources.extra_apis):
        if func == confirm.__get__(pi_cls):
            resources.extra_apis[index] = (method, url, pi_cls._api_confirm)

    from localstripe import server

    return server


def main(port: int) -> None:
    """Serve localstripe, with idempotency keys, on 127.0.0.1:``port`` until killed."""
    from aiohttp import web

    server = _patch_localstripe()
    answers: dict[tuple[str, str], tuple[int, bytes]] = {}

    @web.middleware
    async def idempotency(request: web.Request, handler: Any) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        seen = answers.get((key, request.path))
        if seen is not None:
            return web.Response(status=seen[0], body=seen[1], content_type="application/json")
        response = await handler(request)
        if isinstance(response, web.Response) and response.body is not None and response.status != 409:
            body = response.body if isinstance(response.body, bytes) else json.dumps(response.body).encode()
            answers[(key, request.path)] = (response.status, body)
        return response

    # Outermost, so localstripe's error answers (402 declined) are replayed too, as Stripe does.
    server.app.middlewares.insert(0, idempotency)
    web.run_app(server.app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))


@pytest.fixture(scope="session")
def localstripe() -> Iterator[str]:
    """localstripe with the additions above on a free port of 127.0.0.1 (one per test worker): its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below, after the process)
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.localstripe_server", str(port)],
        cwd=Path(__file__).resolve().parents[1],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/v1/balance", auth=("sk_test_x", ""), timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")
                    raise RuntimeError(f"localstripe did not start on {url}: {output[-2000:]}") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
