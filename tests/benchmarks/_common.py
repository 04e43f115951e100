"""What both benchmarks share: a throw-away database, timed CLI commands, latency statistics, tables."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from tests.live import run_cli

POSTGRES_ENV = "WEBSHOP_TEST_POSTGRES_URL"


def default_postgres_url() -> str | None:
    """The PostgreSQL server the tests use (``WEBSHOP_TEST_POSTGRES_URL``), if set."""
    return os.environ.get(POSTGRES_ENV) or None


def check_postgres_url(url: str) -> str:
    """``url`` if it is a ``postgresql+asyncpg://`` URL; raises ``SystemExit`` with a message otherwise."""
    if not url.startswith("postgresql+asyncpg://"):
        raise SystemExit(f"expected a postgresql+asyncpg:// server URL, got {url.split('://')[0]}://...")
    return url


async def _pg_exec(server_url: str, statement: str) -> None:
    import asyncpg

    # asyncpg wants a plain postgresql:// URL; connect to the server's own database to create/drop others.
    admin = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def fresh_database(engine: str, workdir: Path, postgres_url: str | None = None) -> Iterator[str]:
    """Yield the SQLAlchemy URL of an empty database, removed afterwards.

    SQLite: a file in ``workdir``. PostgreSQL: a database with a random name on the server of
    ``postgres_url``, dropped ``WITH (FORCE)`` at the end, even when the benchmark fails.
    """
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'bench.db'}"
        return
    if not postgres_url:
        raise SystemExit(f"PostgreSQL needs a server: pass --postgres-url or set {POSTGRES_ENV}")
    name = f"webshop_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_exec(postgres_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_pg_exec(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 600) -> tuple[float, str]:
    """Run ``webshop ARGS``; return its wall-clock seconds (start-up included) and its output.

    Raises:
        RuntimeError: the command exited with a non-zero status (the message holds its output).
    """
    started = time.perf_counter()
    done = run_cli(args, env, cwd, timeout=timeout)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"webshop {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return seconds, done.stdout + done.stderr


@contextlib.contextmanager
def workdir(prefix: str, *, keep: bool = False) -> Iterator[Path]:
    """A temporary folder for the catalog, the SQLite file, media and server logs; removed unless ``keep``."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"kept the work folder {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def server_log_tail(workdir: Path, chars: int = 3000) -> str:
    """The end of the live server's log (``tests.live.live_server`` writes ``server-PORT.log``)."""
    logs = sorted(workdir.glob("server-*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1].read_text(errors="replace")[-chars:] if logs else "(no server log)"


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending sequence (``fraction`` 0.99 for p99); 0 when empty."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values), max(1, math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Summary:
    """Latencies of one kind of request, milliseconds; ``errors`` counts unexpected answers."""

    count: int
    errors: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float], errors: int = 0) -> Summary:
        """Summarise latencies given in seconds."""
        values = sorted(s * 1000 for s in seconds)
        mean = sum(values) / len(values) if values else 0.0
        return cls(
            count=len(values),
            errors=errors,
            p50=percentile(values, 0.50),
            p90=percentile(values, 0.90),
            p99=percentile(values, 0.99),
            max=values[-1] if values else 0.0,
            mean=mean,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly figures, milliseconds rounded to 0.1."""
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in self.__dict__.items()}


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: first column left-aligned, the others right-aligned; floats with one decimal."""

    def cell(value: Any) -> str:
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        first, *rest = values
        return "  ".join([first.ljust(widths[0]), *(v.rjust(w) for v, w in zip(rest, widths[1:], strict=True))])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


def machine() -> dict[str, Any]:
    """Where the figures come from: CPUs, Python, platform, and the code's git commit (dirty or not)."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": git("rev-parse", "--short", "HEAD") or None,
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def warn_if_busy() -> float:
    """Print a warning when other work keeps the machine busy (it skews the figures); return the load average."""
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > cpus / 2:
        print(f"warning: load average {load:.1f} on {cpus} CPUs before the load: other work may skew the figures")
    return load


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path`` (folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path}")
