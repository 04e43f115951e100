"""What the services that give money back share (``OrderService``: a cancelled or refunded order;
``RefundService``: chosen lines or an amount): who refunds (the payment provider, or the shop itself for
an order paid another way), the credit notes' number prefix, the idempotency key of an order's whole
refund, and the units refunded so far."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, select

from webshop.db.models import Order, Refund, RefundLine, RefundStatus
from webshop.invoices.numbering import DEFAULT_CREDIT_NOTE_PREFIX, DEFAULT_INVOICE_PREFIX
from webshop.payments.provider import PaymentProvider, RefundResult

if TYPE_CHECKING:
    from webshop.config.settings import InvoiceSettings


RETURNED_BY_SHOP = "returned by the shop"
"""The ``reference`` of a refund the shop gives back itself (``SHOP_RETURNS``), where a provider's refund
has the provider's id."""


def returned_by_shop_message(amount: str) -> str:
    """What the admin is told when ``amount`` (formatted money) of an order paid another way is refunded:
    recorded, and theirs to give back (the pages' flash after a refund, a cancel or a whole refund)."""
    return f"{amount} is recorded as refunded: return it to the customer yourself, the way they paid."


class Refunder(Protocol):
    """What gives an order's money back: ``PaymentProvider.refund``'s signature and answer."""

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Give back ``amount`` minor units of ``currency`` of the payment ``reference``, once per key."""
        ...


class ShopReturns:
    """The refunder of an order an admin marked paid (``Order.paid_another_way``: a bank transfer, cash at
    the counter). No payment provider took that money, so none is asked: the refund is recorded as made
    at once, with its credit note (EU VAT Directive 2006/112/EC, art. 219) and the customer's e-mail, and
    the shop returns the money the way it was paid. Its reference is ``RETURNED_BY_SHOP``."""

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Always made: the shop has taken it on to return ``amount`` itself."""
        return RefundResult(ok=True, reference=RETURNED_BY_SHOP)


SHOP_RETURNS = ShopReturns()
"""The one ``ShopReturns``."""


def refunder_for(order: Order, provider: PaymentProvider) -> Refunder:
    """Who gives ``order``'s money back: ``SHOP_RETURNS`` for an order paid another way, else ``provider``."""
    return SHOP_RETURNS if order.paid_another_way else provider


def refund_idempotency_key(order: Order) -> str:
    """The key every refund request for ``order`` carries, so the provider refunds it once, ever.

    Its id, and its number too: two databases that share one gateway account (staging and
    production, a restored backup) have orders with the same id, never with the same number.
    """
    return f"refund-{order.id}-{order.number}"


async def units_refunded(session: Any, order_id: int, *, succeeded_only: bool = False) -> dict[int, int]:
    """``{order line id: units}`` covered by the order's refunds that did not fail (``webshop.orders.refunds``):
    what is left of a line to refund, and to put back in stock when the whole order is cancelled. With
    ``succeeded_only``, the units whose money has gone back (a pending refund may still fail)."""
    settled = (
        Refund.status == RefundStatus.SUCCEEDED.value if succeeded_only else Refund.status != RefundStatus.FAILED.value
    )
    rows = await session.execute(
        select(RefundLine.order_line_id, func.sum(RefundLine.quantity))
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(Refund.order_id == order_id, settled)
        .group_by(RefundLine.order_line_id)
    )
    return {line_id: int(units) for line_id, units in rows.all()}


class Refunding:
    """Base of the services that give money back (``OrderService``, ``RefundService``): the app's payment
    provider, which refunds, and the number prefix of the credit notes a refund issues."""

    def __init__(
        self,
        session: Any,
        *,
        provider: PaymentProvider | None = None,
        invoices: InvoiceSettings | None = None,
        **repo_kwargs: Any,
    ) -> None:
        """A service on ``session``; ``provider`` is the payment provider that refunds (the app's, given
        by its dependency provider); ``invoices`` gives the credit note and invoice prefixes
        (``WEBSHOP_CREDIT_NOTE_PREFIX``, ``WEBSHOP_INVOICE_PREFIX``; ``CN`` and ``INV`` without it)."""
        super().__init__(session=session, **repo_kwargs)  # type: ignore[call-arg]  # the repository service
        self.provider = provider
        self.credit_note_prefix = invoices.credit_note_prefix if invoices else DEFAULT_CREDIT_NOTE_PREFIX
        self.invoice_prefix = invoices.invoice_prefix if invoices else DEFAULT_INVOICE_PREFIX

    async def refund_waiting(self, order_id: int) -> bool:
        """True while a refund of the order waits for the provider's answer (``pending``): the order is
        not cancelled or refunded whole meanwhile (``OrderService.transition``), so pages say so first."""
        session = self.repository.session  # type: ignore[attr-defined]  # the repository service's
        pending = select(Refund.id).where(Refund.order_id == order_id, Refund.status == RefundStatus.PENDING.value)
        return bool(await session.scalar(select(pending.exists())))

    def _provider(self, given: PaymentProvider | None = None) -> PaymentProvider:
        """``given``, else the app's provider.

        Raises:
            RuntimeError: neither (the service was built without one: a programming error).
        """
        chosen = given or self.provider
        if chosen is None:
            name = type(self).__name__
            raise RuntimeError(f"{name} needs a payment provider to refund ({name}(provider=...))")
        return chosen


def provider_key(refund: Refund, order: Order) -> str:
    """The key the provider gets for ``refund``: the same for every retry of it, never another's.

    Its id and the order's number (unique across databases that share one provider account). It must
    differ from the whole-order key of ``OrderService`` (``refund-{order.id}-{order.number}``): a refund
    and an order with the same id would otherwise share a key and the provider refuse the second.
    """
    return f"refund-r{refund.id}-{order.number}"
