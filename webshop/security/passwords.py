"""Password hashing with argon2id (argon2-cffi's ``PasswordHasher``).

Parameters are at OWASP's Password Storage Cheat Sheet minimum for argon2id (m=19 MiB, t=2, p=1) or
above. Hashing costs tens of milliseconds of CPU, so the async helpers run it in a worker thread,
never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP minimum for argon2id: 19 MiB memory, 2 iterations, 1 degree of parallelism.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 256

# A hash to verify against when the account does not exist, so unknown e-mail and wrong password
# take the same time (OWASP Authentication Cheat Sheet, "Authentication responses").
_DUMMY_HASH = HASHER.hash("not-a-real-password-but-the-same-cost")


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a verification: ``ok``, and a new hash when the stored one used older parameters."""

    ok: bool
    new_hash: str | None = None


def password_problem(password: str) -> str | None:
    """Return why ``password`` is unacceptable, or ``None`` (OWASP: length 8+, no composition rules)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Use at most {MAX_PASSWORD_LENGTH} characters."
    return None


def hash_password_sync(password: str) -> str:
    """Hash ``password`` and return the argon2id PHC string (blocking; about 30 ms)."""
    return HASHER.hash(password)


def verify_password_sync(stored_hash: str | None, password: str) -> VerifyResult:
    """Verify ``password`` against ``stored_hash`` (``None``: compare with a dummy, always fails).

    Returns a ``VerifyResult`` whose ``new_hash`` is set when the parameters changed since the hash
    was made (argon2-cffi's ``check_needs_rehash``), so the caller can store it.
    """
    try:
        HASHER.verify(stored_hash or _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return VerifyResult(ok=False)
    if stored_hash is None:
        return VerifyResult(ok=False)
    if HASHER.check_needs_rehash(stored_hash):
        return VerifyResult(ok=True, new_hash=HASHER.hash(password))
    return VerifyResult(ok=True)


async def hash_password(password: str) -> str:
    """Hash ``password`` in a worker thread; returns the argon2id PHC string."""
    return await anyio.to_thread.run_sync(hash_password_sync, password)


async def verify_password(stored_hash: str | None, password: str) -> VerifyResult:
    """Verify ``password`` in a worker thread; see ``verify_password_sync``."""
    return await anyio.to_thread.run_sync(verify_password_sync, stored_hash, password)
