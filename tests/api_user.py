"""A client of the JSON API: registration, bearer tokens, and the problem+json answers it gets back.

Works with Litestar's in-process ``AsyncTestClient`` (and any ``httpx.AsyncClient``).
"""

from __future__ import annotations

from typing import Any

from tests.shopper import PASSWORD


async def register(client: Any, email: str = "ada@example.com", **extra: Any) -> Any:
    """``POST /api/auth/register`` (the answer is not checked: tests also send bad registrations)."""
    return await client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "Ada", **extra})


async def token_pair(client: Any, email: str = "ada@example.com", password: str = PASSWORD) -> dict[str, Any]:
    """An access and a refresh token for the account (``POST /api/auth/token`` must answer 200)."""
    response = await client.post("/api/auth/token", data={"username": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


async def bearer_of(client: Any, email: str) -> dict[str, str]:
    """The ``Authorization`` header of an access token of an existing account (``token_pair``)."""
    return {"Authorization": f"Bearer {(await token_pair(client, email))['access_token']}"}


async def bearer(client: Any, email: str = "ada@example.com") -> dict[str, str]:
    """Register ``email`` and return the ``Authorization`` header of its access token."""
    await register(client, email)
    return {"Authorization": f"Bearer {(await token_pair(client, email))['access_token']}"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The answer is an RFC 9457 problem with ``status``, giving nothing away; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and "detail" in body
    assert "Traceback" not in response.text and "SELECT" not in response.text
    return body
