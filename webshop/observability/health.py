"""Readiness: ``GET /ready`` answers 200 only when the database answers and its schema is at the
migrations' head; otherwise 503 with the reason (for a load balancer or an orchestrator).

``/health`` (in ``webshop.app``) only says that the process is up (liveness); ``/ready`` says whether
it can serve shoppers now. The head revision is read once, when the app is built, from the Alembic
script directory the app ships with (Alembic's ``ScriptDirectory``). The database check has a short
time limit of its own, so an unreachable database makes ``/ready`` answer 503 quickly instead of
hanging the probe. The revisions come from ``webshop.db.engine`` (``migration_heads`` and
``database_revisions``), which ``webshop serve`` uses for its own start-up check too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Response, get
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from webshop.db.engine import database_revisions, migration_heads
from webshop.observability.logging import get_logger

log = get_logger("webshop.health")

READY_TIMEOUT_SECONDS = 3.0


async def readiness(
    engine: AsyncEngine, heads: frozenset[str], limit_seconds: float = READY_TIMEOUT_SECONDS
) -> str | None:
    """``None`` when the database answers ``SELECT 1`` within ``limit_seconds`` and is at ``heads``;
    otherwise the reason it is not ready (one sentence)."""

    async def probe() -> set[str]:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return await database_revisions(engine)

    try:
        async with asyncio.timeout(limit_seconds):
            versions = await probe()
    except TimeoutError:
        return f"the database did not answer within {limit_seconds:g} seconds"
    except Exception as exc:  # any failure to reach or read the database means "not ready"
        return f"the database is unreachable ({type(exc).__name__})"
    if versions != set(heads):
        current = ", ".join(sorted(versions)) or "none"
        return f"the database schema is at {current}, the code expects {', '.join(sorted(heads))}: run migrations"
    return None


def ready_handler(engine: AsyncEngine) -> Any:
    """The ``GET /ready`` route for ``engine``."""
    heads = frozenset(migration_heads())

    @get("/ready", include_in_schema=False, name="ready")
    async def ready() -> Response[dict[str, str]]:
        """Readiness: the database answers and the migrations are at head (else 503 with the reason)."""
        reason = await readiness(engine, heads)
        if reason is None:
            return Response({"status": "ok"})
        log.warning("not ready", reason=reason)
        return Response({"status": "unavailable", "reason": reason}, status_code=503, headers={"Retry-After": "5"})

    return ready
