"""The test payment service's hosted pages: where the shopper types a test card, and its 3-D Secure step.

These pages belong to the test payment service (``webshop.payments.testing``), not to the shop: they
have a layout of their own (``templates/test_payments/``), say that no real money moves and list the
test cards. The shop sends the shopper to ``GET /test-payments/pay/{reference}`` (``Intent.redirect_url``)
and gets them back at the intent's ``return_url`` with ``?payment_intent=<reference>``
(``TestProvider.return_url_of``), as a real hosted page (Stripe Checkout) does.

Routes (registered only when ``WEBSHOP_PAYMENT_PROVIDER=test``):

* ``GET  /test-payments/pay/{reference}``: the amount, the order number, a card number field, "Pay"
  and "Cancel payment and return to the shop"; the last declined card's message. An intent that no
  longer waits for a card sends the shopper where they belong (the authenticate page, or the shop).
* ``POST /test-payments/pay/{reference}``: try the card (``pay_with_card``). Paid or processing: 303 to
  the shop; needs authentication: 303 to the authenticate page; declined: the page again, 422, with
  the message (the shopper tries another card).
* ``POST /test-payments/pay/{reference}/cancel``: cancel the intent, 303 back to the shop.
* ``GET/POST /test-payments/authenticate/{reference}``: "Complete authentication" pays, "Fail
  authentication" returns to the pay page with its message.

An unknown reference is a 404 page of the service's own. The card number is never stored, logged or
shown again: only ``pay_with_card`` sees it, and it keeps the last four digits of a card that paid
(the request log has the method, route and status, never a body: ``webshop.observability``). The
pages have no script of their own: they work the same with JavaScript on and off.
"""

from typing import Any

from litestar import Controller, MediaType, get, post
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, SkipValidation
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_404_NOT_FOUND, HTTP_422_UNPROCESSABLE_ENTITY
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.db.engine import end_transaction
from webshop.db.models import PaymentStatus, TestPaymentIntent
from webshop.money import format_money
from webshop.payments.provider import CANCELLED_BY_SHOPPER
from webshop.payments.testing import (
    CARD_AUTHENTICATE,
    CARD_DECLINED,
    CARD_DELAYED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_PAYS,
    PAGE_PATH,
    TestProvider,
)
from webshop.web import AnyRequest
from webshop.web.forms import FormFields
from webshop.web.responses import route_url

TEST_CARDS: tuple[tuple[str, str], ...] = (
    (CARD_PAYS, "pays"),
    (CARD_DECLINED, "is declined"),
    (CARD_INSUFFICIENT_FUNDS, "is declined for insufficient funds"),
    (CARD_AUTHENTICATE, 'asks for an extra "authenticate" step (3-D Secure)'),
    (CARD_DELAYED, "is processing, then pays a few seconds later"),
)
"""The test cards the pages list, with what each does (the table in ``webshop.payments.testing``)."""
Provider = NamedDependency[TestProvider]
"""The type of the handlers' ``provider`` (``provider_for_writes``) and ``payment_provider``."""
APPROVE = "complete"
"""The authenticate form's ``outcome`` that approves; any other value fails the authentication."""


def grouped(number: str) -> str:
    """A card number in groups of four, as printed on a card: ``4242 4242 4242 4242``."""
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def _page(name: str, context: dict[str, Any], *, status_code: int = 200) -> Template:
    cards = [(grouped(number), effect) for number, effect in TEST_CARDS]
    return Template(
        f"test_payments/{name}.html",
        context={"test_cards": cards, **context},
        status_code=status_code,
        media_type=MediaType.HTML,
    )


def _unknown() -> Template:
    return _page("unknown", {}, status_code=HTTP_404_NOT_FOUND)


def _see_other(url: str) -> Redirect:
    return Redirect(url, status_code=HTTP_303_SEE_OTHER)


def _where(request: AnyRequest, provider: TestProvider, row: TestPaymentIntent) -> Redirect:
    """303 to where the intent's shopper belongs now: the card form, the authenticate step, or the shop."""
    if row.status == PaymentStatus.REQUIRES_PAYMENT.value:
        return _see_other(route_url(request, "test_payments.pay", reference=row.reference))
    if row.status == PaymentStatus.REQUIRES_ACTION.value:
        return _see_other(route_url(request, "test_payments.authenticate", reference=row.reference))
    return _see_other(provider.return_url_of(row))


async def _waiting(
    request: AnyRequest, provider: TestProvider, reference: str, step: PaymentStatus
) -> TestPaymentIntent | Template | Redirect:
    """Intent ``reference`` when it waits for ``step`` (the card, or the authentication); else the
    answer instead of that step's page: the unknown-payment page, or where the intent is now."""
    row = await provider.intent(reference)
    if row is None:
        return _unknown()
    if row.status != step.value:
        return _where(request, provider, row)
    return row


def _pay_page(row: TestPaymentIntent, *, status_code: int = 200) -> Template:
    return _page(
        "pay",
        {
            "intent": row,
            "amount": format_money(row.amount, row.currency),
            "error": row.failure_reason,
        },
        status_code=status_code,
    )


async def provider_for_writes(
    payment_provider: Provider, db_session: NamedDependency[SkipValidation[AsyncSession]]
) -> TestProvider:
    """The ``provider`` of the handlers that change an intent: the test payment service, which writes in
    its own session, once the shop's session has ended its transaction (so it holds no lock meanwhile)."""
    await end_transaction(db_session)
    return payment_provider


class TestPaymentPageController(Controller):
    """The test payment service's hosted payment and authenticate pages (see the module docstring)."""

    __test__ = False  # not a pytest test class
    path = PAGE_PATH
    include_in_schema = False
    # Payment pages are never kept by a browser or proxy cache (back after paying shows the outcome).
    cache_control = CacheControlHeader(no_store=True)
    dependencies = {"provider": Provide(provider_for_writes)}

    @get("/pay/{reference:str}", name="test_payments.pay", media_type=MediaType.HTML)
    async def pay_page(
        self, request: AnyRequest, reference: FromPath[str], payment_provider: Provider
    ) -> Template | Redirect:
        """The hosted payment page of intent ``reference``."""
        row = await _waiting(request, payment_provider, reference, PaymentStatus.REQUIRES_PAYMENT)
        return row if isinstance(row, Template | Redirect) else _pay_page(row)

    @post("/pay/{reference:str}", name="test_payments.pay_submit", media_type=MediaType.HTML)
    async def pay(
        self, request: AnyRequest, reference: FromPath[str], data: FormFields, provider: Provider
    ) -> Template | Redirect:
        """Try the typed card; a declined one shows the page again with the reason (422)."""
        card_number = data.get("card_number")
        try:
            row = await provider.pay_with_card(reference, card_number if isinstance(card_number, str) else "")
        except LookupError:
            return _unknown()
        if row.status == PaymentStatus.REQUIRES_PAYMENT.value:
            return _pay_page(row, status_code=HTTP_422_UNPROCESSABLE_ENTITY)
        return _where(request, provider, row)

    @post("/pay/{reference:str}/cancel", name="test_payments.cancel", media_type=MediaType.HTML)
    async def cancel(self, reference: FromPath[str], provider: Provider) -> Template | Redirect:
        """Cancel the payment and go back to the shop (a paid intent stays paid)."""
        row = await provider.intent(reference)
        if row is None:
            return _unknown()
        await provider.cancel_intent(reference, failure_reason=CANCELLED_BY_SHOPPER)
        return _see_other(provider.return_url_of(row))

    @get("/authenticate/{reference:str}", name="test_payments.authenticate", media_type=MediaType.HTML)
    async def authenticate_page(
        self, request: AnyRequest, reference: FromPath[str], payment_provider: Provider
    ) -> Template | Redirect:
        """The 3-D Secure style step of intent ``reference``."""
        row = await _waiting(request, payment_provider, reference, PaymentStatus.REQUIRES_ACTION)
        if isinstance(row, Template | Redirect):
            return row
        return _page("authenticate", {"intent": row, "amount": format_money(row.amount, row.currency)})

    @post("/authenticate/{reference:str}", name="test_payments.authenticate_submit", media_type=MediaType.HTML)
    async def authenticate(
        self, request: AnyRequest, reference: FromPath[str], data: FormFields, provider: Provider
    ) -> Template | Redirect:
        """Complete (pays) or fail (back to the card form, with the reason) the authentication."""
        try:
            row = await provider.authenticate(reference, approve=data.get("outcome") == APPROVE)
        except LookupError:
            return _unknown()
        return _where(request, provider, row)
