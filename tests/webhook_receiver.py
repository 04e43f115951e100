"""A real HTTP receiver for outbound webhooks: a ``http.server`` on a free port of 127.0.0.1 that
records what it got and answers 200, or 500 for the next ``fail_next`` requests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.live import free_port


class Receiver:
    """What the test's HTTP server received: ``requests`` as ``(status answered, headers, body)``.

    ``fail_next``: how many next requests get a 500.
    """

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/hooks"
        self.requests: list[tuple[int, dict[str, str], bytes]] = []
        self.fail_next = 0
        self.lock = threading.Lock()

    def record(self, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = 500 if self.fail_next > 0 else 200
            self.fail_next = max(self.fail_next - 1, 0)
            self.requests.append((status, headers, body))
            return status

    async def wait_for(self, count: int, timeout: float = 15) -> list[tuple[int, dict[str, str], bytes]]:
        """The first ``count`` requests (waits for them)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.requests) >= count:
                return self.requests[:count]
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.requests)} request(s) within {timeout} s, expected {count}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on a free port of 127.0.0.1 for this test."""
    port = free_port()
    received = Receiver(port)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            status = received.record({k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received
    finally:
        server.shutdown()
        server.server_close()
