"""A ``webshop serve`` subprocess the test controls: signals, worker processes, exit status, log.

``tests.live.live_server`` is enough when a test only needs a URL; the production tests
(graceful shutdown, database outage, a killed worker) need the process itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.live import CLI, free_port, wait_until_up


@dataclass
class ServerProcess:
    """A running ``webshop serve``: the parent process, its base URL and its log file."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    @property
    def log(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        """The worker processes uvicorn started (children of the parent that run the app)."""
        import psutil

        workers = []
        for child in psutil.Process(self.process.pid).children():
            with contextlib.suppress(psutil.NoSuchProcess):
                # uvicorn starts workers with multiprocessing's "spawn": their command line runs spawn_main.
                if any("spawn_main" in part for part in child.cmdline()):
                    workers.append(child.pid)
        return sorted(workers)

    def signal(self, signum: int = signal.SIGTERM) -> None:
        """Send ``signum`` to the parent process."""
        self.process.send_signal(signum)

    def wait(self, timeout: float) -> int:
        """Wait for the parent to exit; return its exit status."""
        return self.process.wait(timeout=timeout)


@contextlib.contextmanager
def serve(env: dict[str, str], cwd: Path, *args: str, workers: int = 2) -> Iterator[ServerProcess]:
    """Start ``webshop serve --workers N ARGS`` on a free port; yield it once ``/health`` answers.

    Afterwards the server is stopped (SIGTERM, then SIGKILL to it and its workers after 20 s) if the
    test has not stopped it already.
    """
    port = free_port()
    log_path = cwd / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), *args],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        server = ServerProcess(process, f"http://127.0.0.1:{port}", log_path)
        try:
            wait_until_up(f"{server.base_url}/health", process, log_path)
            yield server
        finally:
            stop(server)


def stop(server: ServerProcess) -> None:
    """Stop the server if it still runs: SIGTERM, and after 20 s SIGKILL to the workers and the parent."""
    if server.process.poll() is not None:
        return
    workers = server.worker_pids()
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        server.process.kill()
        server.process.wait()
