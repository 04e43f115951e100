"""Run the real ``webshop`` command line in subprocesses: a live server on 127.0.0.1, commands."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-c", "from webshop.cli import main; main()"]
SECRET = "live-test-secret-key-0123456789-abcdefghijklmnop"


_PORTS_PER_WORKER = 500
_FIRST_PORT = 20000  # below Linux's ephemeral range (32768-60999), so no outgoing connection takes one
_next_port = itertools.count()


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now, from a block of ports that is this process's alone.

    Each pytest-xdist worker (``PYTEST_XDIST_WORKER=gwN``) takes ports from its own block of 500, in
    turn. A port the kernel hands out (``bind(("127.0.0.1", 0))``) could be handed to another worker
    as soon as a server here stops, and a test that restarts a server on the same port would then
    find the other worker's server answering its health check (CI saw a registration land in another
    test's shop that way).
    """
    worker = int("".join(ch for ch in os.environ.get("PYTEST_XDIST_WORKER", "") if ch.isdigit()) or 0)
    first = _FIRST_PORT + (worker % 24) * _PORTS_PER_WORKER
    for _ in range(_PORTS_PER_WORKER):
        port = first + next(_next_port) % _PORTS_PER_WORKER
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + _PORTS_PER_WORKER - 1}")


def shop_env(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for a webshop subprocess working in ``workdir``.

    The per-address rate limits are off: races, benchmarks and browser tests sign in many shoppers from
    127.0.0.1 (tests/integration/test_security.py tests the limits; pass e.g.
    ``WEBSHOP_RATE_LIMIT_AUTH="5/minute"`` to turn one on). The database waits are 30 s instead of
    production's 5 s: tests run in parallel on a shared machine, where a burst of 50 shoppers can queue
    for a pooled connection longer than 5 s; the outage tests pass short ones of their own.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBSHOP_")}
    env.update(
        WEBSHOP_DATABASE_URL=database_url,
        WEBSHOP_SECRET_KEY=SECRET,
        WEBSHOP_MEDIA_DIR=str(workdir / "media"),
        WEBSHOP_RATE_LIMIT_AUTH="off",
        WEBSHOP_RATE_LIMIT_REFRESH="off",
        WEBSHOP_RATE_LIMIT_GENERAL="off",
        WEBSHOP_DB_POOL_TIMEOUT="30",
        WEBSHOP_QUEUE_TIMEOUT="30",
        WEBSHOP_DB_CONNECT_TIMEOUT="30",
    )
    env.update(extra)
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``webshop ARGS`` and return the finished process (output captured)."""
    return subprocess.run([*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


class PortTaken(RuntimeError):
    """The server exited because another process took its port between ``free_port`` and its bind."""


def wait_until_up(url: str, process: subprocess.Popen[Any], log_path: Path, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200; raise with the log's end if the process exits or never answers
    (``PortTaken`` when it exited because its port was in use)."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            log = log_path.read_text()
            error = PortTaken if "already in use" in log else RuntimeError  # the serve check, or the bind itself
            raise error(f"server exited early ({process.returncode}):\n{log[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not start:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)


@contextlib.contextmanager
def running(
    command: list[str],
    *,
    env: dict[str, str] | None,
    cwd: Path,
    log_path: Path,
    ready_url: str,
    start_timeout: float = 60,
) -> Iterator[subprocess.Popen[Any]]:
    """Run ``command`` (output to ``log_path``) until ``ready_url`` answers 200 (within ``start_timeout``
    seconds) and yield its process; stop it afterwards (SIGTERM, then SIGKILL after 15 s)."""
    with log_path.open("w") as log:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until_up(ready_url, process, log_path, timeout=start_timeout)
            yield process
        except BaseException:
            # Show why the server answered as it did: its warnings and errors, not the access log.
            lines = [line for line in log_path.read_text(errors="replace").splitlines() if _is_problem(line)]
            print(f"--- {log_path.name}: warnings and errors ---", *lines[-40:], sep="\n")
            raise
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _is_problem(log_line: str) -> bool:
    """A server log line worth showing when a test fails: a warning, an error or a traceback line."""
    return any(mark in log_line for mark in ("[warning", "[error", "[critical", "Traceback", "Error:", "  File "))


@contextlib.contextmanager
def live_server(env: dict[str, str], cwd: Path, *, workers: int = 1) -> Iterator[str]:
    """Start ``webshop serve`` with ``workers`` processes; yield its base URL; stop it afterwards.

    A port that another process takes between ``free_port``'s probe and the server's bind (a process
    outside this test run) costs a retry on the next port, up to three tries."""
    for attempt in range(1, 4):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        command = [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
        server = running(command, env=env, cwd=cwd, log_path=cwd / f"server-{port}.log", ready_url=f"{base_url}/health")
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(server)
            except PortTaken:
                if attempt == 3:
                    raise
                continue
            yield base_url
            return
