"""Fixtures shared by the HTTP tests: an admin account, the test client signed in as it, and its bearer header."""

from __future__ import annotations

import pytest

from tests.api_user import bearer_of
from tests.factories import make_user
from tests.localstripe_server import localstripe  # noqa: F401 (a fixture: a local fake Stripe on 127.0.0.1)
from tests.shopper import sign_in
from tests.webhook_receiver import receiver  # noqa: F401 (a fixture: a real HTTP receiver for webhooks)
from webshop.db.models import UserRole

ADMIN_EMAIL = "boss@example.com"
"""The admin of the ``admin_id``/``admin`` fixtures (password ``tests.shopper.PASSWORD``)."""


@pytest.fixture
async def admin_id(alchemy) -> int:
    """An admin account, Boss (``ADMIN_EMAIL``); returns its id."""
    return await make_user(alchemy, ADMIN_EMAIL, UserRole.ADMIN, name="Boss")


@pytest.fixture
async def admin(client, admin_id):
    """The test client, signed in as the admin (``admin_id``)."""
    assert (await sign_in(client, ADMIN_EMAIL)).status_code == 303
    return client


@pytest.fixture
async def admin_headers(client, admin_id) -> dict[str, str]:
    """The admin's (``admin_id``) bearer ``Authorization`` header for the API."""
    return await bearer_of(client, ADMIN_EMAIL)
