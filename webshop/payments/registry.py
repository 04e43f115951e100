"""Which payment provider an app uses: ``WEBSHOP_PAYMENT_PROVIDER`` (``test`` or ``stripe``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webshop.payments.testing import TestProvider, webhook_secret

if TYPE_CHECKING:
    from webshop.config import Settings
    from webshop.db.engine import ShopAlchemyConfig, WriteSessions
    from webshop.payments.provider import PaymentProvider


def build_provider(settings: Settings, alchemy: ShopAlchemyConfig | WriteSessions) -> PaymentProvider:
    """The provider ``settings.payments.provider`` names, built once per app.

    ``test``: ``webshop.payments.testing.TestProvider`` on the shop's database; ``stripe``:
    ``webshop.payments.stripe_provider.StripeProvider`` with the Stripe keys.
    """
    payments = settings.payments
    if payments.provider == "stripe":
        from webshop.payments.stripe_provider import StripeProvider

        return StripeProvider(payments)
    return TestProvider(
        alchemy,
        base_url=settings.shop.base_url,
        secret=webhook_secret(settings.security.secret_key),
        tolerance=payments.webhook_tolerance,
        delay_seconds=payments.test_delay_seconds,
    )
