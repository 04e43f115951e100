"""Back-off rules: sign-in locks that grow with each failure, and the mail sender's retry delays."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from litestar.stores.memory import MemoryStore

from tests.conftest import make_settings
from webshop.errors import TooManyAttempts
from webshop.mail.sender import MAX_BACKOFF, backoff
from webshop.security.throttle import (
    FIRST_LOCK,
    FREE_FAILURES,
    LONG_LOCK,
    LONG_LOCK_AFTER,
    SignInThrottle,
    lock_duration,
    locked_message,
)


def test_the_first_failures_are_free_then_each_one_doubles_the_lock_up_to_an_hour():
    assert [lock_duration(n) for n in range(FREE_FAILURES)] == [None] * FREE_FAILURES
    assert [lock_duration(n).total_seconds() for n in range(FREE_FAILURES, LONG_LOCK_AFTER)] == [60, 120, 240, 480, 960]
    assert lock_duration(FREE_FAILURES) == FIRST_LOCK
    assert lock_duration(LONG_LOCK_AFTER) == lock_duration(LONG_LOCK_AFTER + 100) == LONG_LOCK == timedelta(hours=1)


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (1, "Try again in 1 minute."),
        (60, "Try again in 1 minute."),
        (61, "Try again in 2 minutes."),  # rounded up: never "0 minutes", never too early
        (3600, "Try again in 60 minutes."),
    ],
)
def test_the_lock_message_rounds_up_to_whole_minutes(seconds, message):
    assert locked_message(seconds) == f"Too many failed sign-in attempts. {message}"


async def test_an_address_without_an_account_is_locked_like_an_account():
    """Failures for unknown addresses are counted in the store, so guessing them reveals nothing."""
    throttle = SignInThrottle(MemoryStore())
    for _ in range(FREE_FAILURES - 1):
        await throttle.failed(None, None, "Nobody@Example.com")  # type: ignore[arg-type]  # no account: no session
        await throttle.check(None, "nobody@example.com")
    await throttle.failed(None, None, " nobody@example.com ")  # type: ignore[arg-type]
    with pytest.raises(TooManyAttempts) as locked:
        await throttle.check(None, "NOBODY@example.com")  # the same address, however it is typed
    assert 0 < locked.value.retry_after <= FIRST_LOCK.total_seconds()
    await throttle.check(None, "somebody@example.com")  # another address is not locked


async def test_without_a_store_unknown_addresses_are_not_counted():
    throttle = SignInThrottle(None)
    for _ in range(FREE_FAILURES + 1):
        await throttle.failed(None, None, "nobody@example.com")  # type: ignore[arg-type]
    await throttle.check(None, "nobody@example.com")


def test_mail_retries_double_from_the_base_up_to_six_hours(tmp_path: Path):
    mail = make_settings("sqlite+aiosqlite://", tmp_path, mail_retry_seconds=30.0).mail
    assert [backoff(mail, n).total_seconds() for n in (0, 1, 2, 3, 4)] == [30, 30, 60, 120, 240]
    assert backoff(mail, 30) == MAX_BACKOFF == timedelta(hours=6)
    # However many attempts (the refund worker's may reach 1,000), the delay stays six hours, no overflow.
    slow = make_settings("sqlite+aiosqlite://", tmp_path, mail_retry_seconds=86400.0).mail
    assert backoff(mail, 42) == backoff(slow, 31) == backoff(slow, 10**6) == MAX_BACKOFF
