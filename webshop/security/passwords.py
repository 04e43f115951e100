"""Password hashing with argon2id (argon2-cffi's ``PasswordHasher``).

Parameters are at OWASP's Password Storage Cheat Sheet minimum for argon2id (m=19 MiB, t=2, p=1) or
above. Hashing costs tens of milliseconds of CPU, so the async helpers run it in a worker thread,
never on the event loop, and at most one per CPU at a time (more would not finish sooner).

Each hash allocates its 19 MiB with ``malloc``. glibc serves blocks that large with ``mmap`` and
gives them back when freed, but after the first such free it raises its threshold for ``mmap`` to
the block's size, so later hashes are served from the heap of the thread that runs them and each
thread keeps its 19 MiB: 32 sign-ups at once left a worker at 770 MB. ``_keep_large_blocks_mapped``
fixes the threshold at 1 MiB (``mallopt(M_MMAP_THRESHOLD)``, which also ends the adjustment), so
the memory goes back to the system after every hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import sys
import weakref
from dataclasses import dataclass

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP minimum for argon2id: 19 MiB memory, 2 iterations, 1 degree of parallelism.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)

M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter number of glibc's mmap threshold (``malloc.h``)."""


def _keep_large_blocks_mapped(threshold: int = 1024 * 1024) -> bool:
    """Make glibc serve blocks of ``threshold`` bytes and more with ``mmap`` (see the module docstring).

    Returns True when done; False elsewhere (not Linux with glibc), where it is not needed or not known.
    """
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, threshold))
    return False


_keep_large_blocks_mapped()
_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = weakref.WeakKeyDictionary()


def _hashing() -> anyio.CapacityLimiter:
    """The running event loop's limit on hashes computed at once: one per CPU (argon2 is CPU-bound)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(os.cpu_count() or 1)
    return limiter


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
    if not password.strip():
        return "Use something other than spaces."
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
    return await anyio.to_thread.run_sync(hash_password_sync, password, limiter=_hashing())


async def verify_password(stored_hash: str | None, password: str) -> VerifyResult:
    """Verify ``password`` in a worker thread; see ``verify_password_sync``."""
    return await anyio.to_thread.run_sync(verify_password_sync, stored_hash, password, limiter=_hashing())
