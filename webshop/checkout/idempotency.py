"""Idempotency keys for unsafe API requests (draft-ietf-httpapi-idempotency-key-header).

The first request with a key claims it in its own committed transaction, so a concurrent request
with the same key sees the claim: while the first runs it gets 409; afterwards the first response is
replayed (same status, same body); the same key with a different body is 422. A request that fails
with a client error releases its key, so the client may correct the request and retry with it.
Keys are scoped per user and per operation.

A claim whose request never finished (its worker was killed, the host lost power) would answer 409
forever; after ``STALE_CLAIM_SECONDS`` the next request with the same key and body takes it over. That
is safe because the operation itself is idempotent by the same key (checkout stores it as the order's
unique checkout token and passes it to the payment provider): if the first attempt committed its
order, the takeover finds and returns that order instead of placing or charging a second one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from webshop.db.models import IdempotencyRecord
from webshop.db.repository import repository_for
from webshop.errors import Conflict, ValidationFailed

MAX_KEY_LENGTH = 255
STALE_CLAIM_SECONDS = 120
"""Age after which an unfinished claim counts as abandoned: far longer than any checkout takes
(database waits are bounded at 5 s each, the graceful shutdown at 30 s)."""


class Replay:
    """A stored response to send again: ``status`` and the JSON ``body``."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self.body = body


def fingerprint(body: Any) -> str:
    """SHA-256 of the request body in canonical JSON (sorted keys), to recognise "the same request"."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class IdempotencyService(SQLAlchemyAsyncRepositoryService[IdempotencyRecord]):
    """Claims, completes and releases idempotency keys; every step is committed at once."""

    repository_type = repository_for(IdempotencyRecord)

    async def claim(
        self, *, user_id: int, scope: str, key: str, request_fingerprint: str, take_over: bool = True
    ) -> Replay | None:
        """Claim ``key`` for this request, or say what to answer instead.

        ``take_over=False`` for an operation that is not itself idempotent by the key (a stock adjustment):
        a claim left unfinished is then never taken over (409 stays the answer; the client checks what
        happened, then uses a new key), since the operation may have committed before its answer was stored.

        Returns:
            ``None`` when this request owns the key now (go ahead), or the ``Replay`` of the
            completed first request.

        Raises:
            ValidationFailed: the key is empty or too long (400 is raised by the caller for a missing
                key), or it was used with a different request body (422).
            Conflict: the first request with this key is still running (409).
        """
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            raise ValidationFailed(
                f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters.",
                field_errors={"Idempotency-Key": "Invalid key."},
            )
        session = self.repository.session
        try:
            async with session.begin_nested():
                session.add(IdempotencyRecord(user_id=user_id, scope=scope, key=key, fingerprint=request_fingerprint))
                await session.flush()
        except IntegrityError:
            existing = await session.scalar(
                select(IdempotencyRecord)
                .where(
                    IdempotencyRecord.user_id == user_id,
                    IdempotencyRecord.scope == scope,
                    IdempotencyRecord.key == key,
                )
                .execution_options(populate_existing=True)
            )
            await session.commit()
            if existing is None:  # released between our insert and our read: the client may retry
                raise Conflict("A request with this Idempotency-Key just finished. Retry it.") from None
            if existing.fingerprint != request_fingerprint:
                raise ValidationFailed(
                    "This Idempotency-Key was already used with a different request.",
                    field_errors={"Idempotency-Key": "Used with a different request body."},
                ) from None
            if existing.response_status is None:
                if take_over and await self._take_over_if_abandoned(existing.id):
                    return None
                busy = Conflict("A request with this Idempotency-Key is still being processed: retry it in a moment.")
                busy.retry_after = 1  # the answer carries Retry-After: 1
                raise busy from None
            return Replay(existing.response_status, existing.response_body or {})
        await session.commit()
        return None

    async def run_once(
        self,
        *,
        user_id: int,
        scope: str,
        key: str,
        request: Any,
        operation: Callable[[], Awaitable[Any]],
        status: int = 201,
    ) -> tuple[int, Any]:
        """Run ``operation`` once per ``key`` (this user's, in ``scope``) and ``request`` (its JSON-able
        body: the fingerprint), without taking over unfinished claims (``claim``'s ``take_over=False``).

        Returns:
            ``(status, answer)``: the operation's answer (a Struct) with ``status``, or the stored answer of
            the first request with the key (its JSON) with its status.

        Raises:
            ValidationFailed, Conflict: as ``claim`` (422 another body, 409 still running); and whatever
                ``operation`` raises, after releasing the key (the client may correct and retry with it).
        """
        claim: dict[str, Any] = {"user_id": user_id, "scope": scope, "key": key}
        replay = await self.claim(**claim, request_fingerprint=fingerprint(request), take_over=False)
        if replay is not None:
            return replay.status, replay.body
        try:
            answer = await operation()
        except Exception:
            await self.release(**claim)
            raise
        await self.complete(**claim, status=status, body=msgspec.to_builtins(answer))
        return status, answer

    async def _take_over_if_abandoned(self, record_id: int) -> bool:
        """Claim an unfinished record older than ``STALE_CLAIM_SECONDS`` for this request (committed).

        One conditional ``UPDATE`` with a row-count check, so of several concurrent retries exactly one
        takes the key over and the others still get 409.
        """
        session = self.repository.session
        now = datetime.now(UTC)
        taken = await session.execute(
            update(IdempotencyRecord)
            .where(
                IdempotencyRecord.id == record_id,
                IdempotencyRecord.response_status.is_(None),
                IdempotencyRecord.updated_at < now - timedelta(seconds=STALE_CLAIM_SECONDS),
            )
            .values(updated_at=now)
        )
        await session.commit()
        return cast("bool", taken.rowcount == 1)

    async def complete(self, *, user_id: int, scope: str, key: str, status: int, body: dict[str, Any]) -> None:
        """Store the response of the request that owns ``key`` (committed)."""
        await self.repository.session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
            .values(response_status=status, response_body=body)
        )
        await self.repository.session.commit()

    async def release(self, *, user_id: int, scope: str, key: str) -> None:
        """Forget ``key`` after a failed request, so it can be retried (committed)."""
        await self.repository.session.rollback()
        await self.repository.session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id,
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.key == key,
                IdempotencyRecord.response_status.is_(None),
            )
        )
        await self.repository.session.commit()
