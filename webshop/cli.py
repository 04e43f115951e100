"""The ``webshop`` command line: demo, serve, catalog import and generation, admins, migrations."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import getpass
import os
import re
import secrets
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import click
from advanced_alchemy.cli import add_migration_commands

from webshop.config import (
    DEFAULT_DATABASE_FILE,
    STATE_DIR,
    Settings,
    SettingsError,
    get_settings,
    served_base_url,
    settings_warnings,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from webshop.catalog.csv.apply import ImportReport

DEMO_PRODUCTS = 48


def _settings() -> Settings:
    try:
        return get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _set_default(name: str, value: str) -> Settings:
    """Set the environment variable ``name`` to ``value`` unless it is set, and read the settings again.

    Through the environment, not an argument: uvicorn's worker processes (and the app factory in
    this process) read their settings from it.

    Raises:
        click.ClickException: the settings are invalid.
    """
    if not os.environ.get(name):
        os.environ[name] = value
        get_settings.cache_clear()
    return _settings()


def _ensure_port_free(host: str, port: int) -> None:
    """Stop, before anything else happens, when ``host:port`` cannot be listened on.

    Binds (and closes) a socket the way uvicorn will, with ``SO_REUSEADDR``, so a port that a server
    stopped a moment ago (``TIME_WAIT``) counts as free and one another server listens on does not.

    Raises:
        click.ClickException: the port is in use ("... stop the other server or pass --port"), or the
            host cannot be listened on.
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host}: {exc.strerror}") from exc
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use — stop the other server or pass --port"
                ) from exc
            raise click.ClickException(f"cannot listen on {host} port {port}: {exc.strerror}") from exc


def demo_database_file(catalog: Path | None) -> str:
    """The SQLite file ``webshop demo`` uses when ``WEBSHOP_DATABASE_URL`` is not set (relative to the
    current directory): ``webshop.db`` for the generated demo catalog, ``webshop-<folder name>.db``
    for ``--catalog PATH`` (``webshop-catalog.db`` for ``../shared/catalog``).

    One database per catalog, so that ``webshop demo --catalog PATH`` shows exactly that catalog
    (an import never deletes products; into the generated demo shop it would mix the two), and each
    demo shop keeps its own orders and accounts when one switches back and forth.
    """
    if catalog is None:
        return DEFAULT_DATABASE_FILE
    slug = re.sub(r"[^a-z0-9]+", "-", catalog.resolve().name.lower()).strip("-") or "catalog"
    return f"webshop-{slug}.db"


@click.group()
def main() -> None:
    """webshop: a small server-rendered web shop."""


@main.group(name="db")
@click.pass_context
def db_group(ctx: click.Context) -> None:
    """Database migrations (advanced-alchemy's Alembic commands)."""
    from webshop.db.engine import create_alchemy_config

    ctx.ensure_object(dict)
    ctx.obj["configs"] = [create_alchemy_config(_settings(), null_pool=True)]


add_migration_commands(db_group)


def _migrate(settings: Settings) -> None:
    from webshop.db.engine import create_alchemy_config, run_migrations

    run_migrations(create_alchemy_config(settings, null_pool=True))


@main.command(name="import-catalog")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--no-progress", is_flag=True, help="Do not show a progress bar.")
def import_catalog_command(path: Path, no_progress: bool) -> None:
    """Import a catalog folder (products.csv and images/); running it twice changes nothing."""
    settings = _settings()
    _migrate(settings)
    report = _run_import(settings, path, progress=not no_progress)
    if report.errors:
        sys.exit(1)


@contextlib.contextmanager
def _progress_bar(show: bool) -> Iterator[Callable[[int, int], None] | None]:
    """Yield an ``on_progress(done, total)`` for ``import_catalog``: a rich progress bar over products
    on stderr when ``show`` (drawn from the first batch on, so an error before it stands alone), else
    ``None``."""
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("importing products"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    tasks: list[TaskID] = []

    def advance(done: int, total: int) -> None:
        if not tasks:
            bar.start()
            tasks.append(bar.add_task("import", total=total))
        bar.update(tasks[0], completed=done, total=total)

    try:
        yield advance
    finally:
        if tasks:
            bar.stop()


def _run_import(settings: Settings, path: Path, *, progress: bool) -> ImportReport:
    from webshop.catalog.csv.apply import import_catalog
    from webshop.db.engine import create_alchemy_config

    async def run() -> ImportReport:
        config = create_alchemy_config(settings, null_pool=True)
        try:
            with _progress_bar(progress) as advance:
                return await import_catalog(
                    config,
                    path,
                    settings.shop.media_dir,
                    on_progress=advance,
                    currency=settings.shop.currency,
                    tax_categories=settings.shop.tax_rates_bp,
                )
        finally:
            await config.get_engine().dispose()

    try:
        report = asyncio.run(run())
    except FileNotFoundError as exc:  # a folder without products.csv: say so, not a traceback
        raise click.ClickException(str(exc)) from exc
    for notice in report.notices:
        click.echo(f"note: line {notice.line}: {notice.reason}")
    for error in report.errors:
        click.echo(f"line {error.line}: {error.reason}", err=True)
    click.echo(report.summary())
    return report


@main.command(name="generate-catalog")
@click.option("--products", type=click.IntRange(1, 1_000_000), default=10_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
def generate_catalog_command(products: int, seed: int, out: Path) -> None:
    """Write a generated catalog of PRODUCTS products to OUT, in the import format."""
    from webshop.catalog.generator import generate_catalog

    generate_catalog(out, products, seed=seed)
    click.echo(f"wrote {products} products to {out / 'products.csv'}")


async def _ensure_admin(settings: Settings, email: str, password: str, name: str = "Shop admin") -> bool:
    """Create (or promote) the admin ``email``; returns True when a new account was created."""
    from webshop.accounts.service import UserService
    from webshop.db.engine import create_alchemy_config, write_session

    config = create_alchemy_config(settings, null_pool=True)
    try:
        async with write_session(config) as session:
            return await UserService(session=session).ensure_admin(email=email, password=password, name=name)
    finally:
        await config.get_engine().dispose()


@main.command(name="create-admin")
@click.argument("email")
@click.option("--name", default="Shop admin", show_default=True)
def create_admin_command(email: str, name: str) -> None:
    """Create an admin (password from WEBSHOP_ADMIN_PASSWORD or a prompt); promotes an existing user."""
    from webshop.errors import ValidationFailed

    settings = _settings()
    _migrate(settings)
    password = os.environ.get("WEBSHOP_ADMIN_PASSWORD") or getpass.getpass("Password for the admin: ")
    try:
        created = asyncio.run(_ensure_admin(settings, email, password, name))
    except ValidationFailed as exc:
        raise click.ClickException("; ".join(exc.field_errors.values()) or exc.detail) from exc
    click.echo(f"{'created' if created else 'promoted existing user to'} admin {email}")


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _safe_url(settings: Settings) -> str:
    """The database URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(settings.database.url).render_as_string(hide_password=True)


def _prepare_database(settings: Settings, *, migrate: bool) -> None:
    """Bring the database to the code's schema before any worker starts, or stop with a clear message.

    With ``migrate``, pending migrations are applied once, here in the parent process, before uvicorn
    starts its workers (so several workers never race to migrate). Without, the database must already
    be at the latest revision (a release step ran ``webshop db upgrade``), else nothing is served.

    Raises:
        click.ClickException: the database is unreachable, or behind (or ahead of) the code.
    """
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from webshop.db.engine import (
        DatabaseUnavailable,
        create_engine,
        database_revisions,
        known_revisions,
        migration_heads,
    )

    try:
        if migrate:
            _migrate(settings)
            return

        async def current() -> set[str]:
            engine = create_engine(settings.database, null_pool=True)
            try:
                return await database_revisions(engine)
            finally:
                await engine.dispose()

        revisions, heads = asyncio.run(current()), migration_heads()
    except (DatabaseUnavailable, OSError, SQLAlchemyError, CommandError) as exc:
        raise click.ClickException(f"cannot use the database {_safe_url(settings)}: {exc}") from exc
    unknown = revisions - known_revisions()
    if unknown:
        raise click.ClickException(
            f"the database {_safe_url(settings)} is at {', '.join(sorted(unknown))}, a revision this version of "
            "webshop does not know: it was migrated by a newer version; deploy that version (or downgrade the "
            "database with it)"
        )
    if revisions != heads:
        at = ", ".join(sorted(revisions)) or "no revision (never migrated)"
        raise click.ClickException(
            f"the database {_safe_url(settings)} is at {at}, but this version of webshop needs "
            f"{', '.join(sorted(heads))}: run `webshop db upgrade` first (or start without --no-migrate)"
        )


def _serve(settings: Settings, host: str, port: int, workers: int, uds: Path | None = None) -> None:
    """Run uvicorn: ``workers`` processes, uvloop + httptools when installed, graceful shutdown.

    uvicorn's own proxy-header handling is off: the app decides which ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` headers to believe (only from ``WEBSHOP_TRUSTED_PROXIES``,
    webshop/security/proxies.py), the same way under any server and in tests.

    On SIGTERM or SIGINT each worker stops accepting connections, lets the requests in flight finish
    (at most ``settings.server.graceful_timeout`` seconds, then they are cancelled), runs the app's shutdown
    (closing the database pool) and exits; the parent exits 0 after them. A worker that dies is
    replaced by the parent.
    """
    where = f"unix:{uds}" if uds else f"http://{host}:{port}"
    with contextlib.ExitStack() as stack:
        if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # prometheus_client sums the workers' metrics through files in this (empty) folder.
            metrics_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="webshop-metrics-"))
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            stack.callback(os.environ.pop, "PROMETHEUS_MULTIPROC_DIR", None)
        _run_uvicorn(settings, host, port, workers, uds, where)


KEEP_ALIVE_SECONDS = 75
"""How long an idle HTTP/1.1 connection stays open. Longer than the idle timeouts of the proxies in
front (nginx's upstream ``keepalive_timeout`` and AWS load balancers: 60 s), so the proxy, not the
server, closes idle connections; otherwise a request sent on a connection the server is closing at
that moment fails (uvicorn's default of 5 s makes that race common under load)."""


def _run_uvicorn(settings: Settings, host: str, port: int, workers: int, uds: Path | None, where: str) -> None:
    import uvicorn

    loop = "uvloop" if _importable("uvloop") else "asyncio"
    http = "httptools" if _importable("httptools") else "h11"
    click.echo(
        f"webshop: serving {where} with {workers} worker(s) ({loop} + {http}); database {_safe_url(settings)}; "
        f"graceful shutdown {settings.server.graceful_timeout} s",
        err=True,
    )
    uvicorn.run(
        "webshop.app:create_app",
        factory=True,
        host=host,
        port=port,
        uds=str(uds) if uds else None,
        workers=workers,
        loop=loop,
        http=http,
        proxy_headers=False,
        timeout_graceful_shutdown=settings.server.graceful_timeout,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        server_header=False,
        log_level="info",
    )


@main.command(name="serve")
@click.option("--host", default=None, help="Interface to listen on.  [default: WEBSHOP_HOST or 127.0.0.1]")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="[default: WEBSHOP_PORT or 8000]")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=None, help="Worker processes.  [default: WEBSHOP_WORKERS or 1]"
)
@click.option(
    "--uds",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Listen on this unix domain socket instead of host:port (for a proxy on the same machine).",
)
@click.option(
    "--no-migrate",
    is_flag=True,
    help="Do not apply migrations; refuse to start unless the database is at the latest revision.",
)
def serve_command(host: str | None, port: int | None, workers: int | None, uds: Path | None, no_migrate: bool) -> None:
    """Serve the shop (pending migrations are applied first, once; no demo data)."""
    settings = _settings()
    host, port = host or settings.server.host, port or settings.server.port
    if uds is None:
        _ensure_port_free(host, port)
        # Without WEBSHOP_BASE_URL, links in e-mails point where the shop serves.
        settings = _set_default("WEBSHOP_BASE_URL", served_base_url(host, port))
    for warning in settings_warnings(settings):
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    workers = workers or settings.server.workers
    if settings.database.is_sqlite and workers > 1:
        click.echo(
            f"note: SQLite with {workers} workers: they share the file through SQLite's locking (WAL, busy "
            "timeout); writes are serialised. Use PostgreSQL for a busy shop or several hosts.",
            err=True,
        )
    _prepare_database(settings, migrate=settings.database.migrate_on_start and not no_migrate)
    _serve(settings, host, port, workers, uds)


@main.command(name="demo")
@click.option(
    "--catalog",
    "catalog",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Serve this catalog folder instead of the generated demo catalog, from a database of its own "
    "(webshop-<folder name>.db unless WEBSHOP_DATABASE_URL is set).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--no-serve", is_flag=True, help="Set everything up, then exit instead of serving.")
def demo_command(catalog: Path | None, host: str, port: int, no_serve: bool) -> None:
    """Set up a demo shop on SQLite (database, admin, catalog) and serve it.

    Each catalog gets its own SQLite file (see ``demo_database_file``), so the shop shows exactly the
    catalog asked for. When the port is taken, it says so before touching any database.
    """
    from webshop.catalog.generator import generate_catalog

    _settings()  # a malformed WEBSHOP_* variable is reported first
    if not no_serve:
        _ensure_port_free(host, port)
    _set_default("WEBSHOP_DATABASE_URL", f"sqlite+aiosqlite:///{demo_database_file(catalog)}")
    settings = _set_default("WEBSHOP_BASE_URL", served_base_url(host, port))
    click.echo(f"database: {settings.database.url}")
    _migrate(settings)

    email = settings.shop.admin_email or "admin@example.com"
    password = settings.shop.admin_password or secrets.token_urlsafe(12)
    created = asyncio.run(_ensure_admin(settings, email, password))
    if created:
        shown = "(from WEBSHOP_ADMIN_PASSWORD)" if settings.shop.admin_password else password
        click.secho(f"admin account: {email}  password: {shown}  (shown once; keep it)", fg="green")
    else:
        click.echo(f"admin account: {email} (already exists)")

    if catalog is None:
        catalog = Path.cwd() / STATE_DIR / "demo-catalog"
        if not (catalog / "products.csv").exists():
            generate_catalog(catalog, DEMO_PRODUCTS, demo=True)
    report = _run_import(settings, catalog, progress=True)
    _warn_about_other_products(settings, report)
    if no_serve:
        return
    click.secho(f"webshop is running on http://{host}:{port}  (Ctrl+C to stop)", fg="green", bold=True)
    _serve(settings, host, port, 1)


def _warn_about_other_products(settings: Settings, report: object) -> None:
    """Say so when the demo database holds products that are not in the catalog just imported (an
    import adds and updates, it never deletes: WEBSHOP_DATABASE_URL points at a shop with other products, or
    products were made in the demo shop since its first start), with advice that fits which."""
    from sqlalchemy import func, select

    from webshop.db.engine import create_alchemy_config
    from webshop.db.models import Product

    in_catalog = sum(
        getattr(report, name, 0) for name in ("products_created", "products_updated", "products_unchanged")
    )

    async def count() -> int:
        config = create_alchemy_config(settings, null_pool=True)
        try:
            async with config.get_session() as session:
                statement = select(func.count()).select_from(Product).where(Product.deleted_at.is_(None))
                return await session.scalar(statement) or 0
        finally:
            await config.get_engine().dispose()

    others = asyncio.run(count()) - in_catalog
    if others <= 0:
        return
    if os.environ.get("WEBSHOP_DATABASE_URL"):
        advice = (
            "to see the catalog alone, unset WEBSHOP_DATABASE_URL (each catalog then gets a database of its own) "
            "or point it at an empty database"
        )
    else:  # the catalog's own demo database: products made on its admin pages since it was first started
        advice = "they were made in this demo shop; to start again from the catalog alone, move that database away"
    click.secho(
        f"note: the database {_safe_url(settings)} also holds {others} product(s) that are not in this catalog; "
        + advice,
        fg="yellow",
        err=True,
    )


@main.command(name="check-stock")
@click.option(
    "--repair",
    is_flag=True,
    help="Recompute wrong product summaries and rebuild the search index (the stock ledger is never changed).",
)
def check_stock_command(repair: bool) -> None:
    """Verify the stock ledger and the catalog data derived from it.

    Every variant's stock must equal the sum of its stock movements; every product's summary columns
    (lowest and highest price, in stock) must equal a fresh computation from its variants; every
    visible product's search document must equal a fresh one, and no other product may have one.
    Exits 1 when anything disagrees (after ``--repair``: when the ledger does).
    """
    from webshop.catalog.search_index import find_search_index_mismatches
    from webshop.catalog.summaries import Summary, find_summary_mismatches, repair_derived_data
    from webshop.db.engine import create_alchemy_config, write_session
    from webshop.stock.service import find_ledger_mismatches

    settings = _settings()

    async def run() -> tuple[list[tuple[str, int, int]], list[tuple[str, Summary, Summary]], list[int]]:
        config = create_alchemy_config(settings, null_pool=True)
        try:
            async with config.get_session() as session:
                found = (
                    await find_ledger_mismatches(session),
                    await find_summary_mismatches(session),
                    await find_search_index_mismatches(session),
                )
            if repair and (found[1] or found[2]):
                async with write_session(config) as session:
                    slugs = [slug for slug, _stored, _fresh in found[1]]
                    await repair_derived_data(session, summary_slugs=slugs, search_index=bool(found[2]))
            return found
        finally:
            await config.get_engine().dispose()

    mismatches, summaries, documents = asyncio.run(run())
    problems = []
    if not mismatches:
        click.echo("stock ledger consistent: every variant's stock equals the sum of its movements")
    else:
        for sku, stock, ledger in mismatches:
            click.echo(f"{sku}: stock {stock}, ledger sum {ledger}", err=True)
        problems.append(f"{len(mismatches)} variant(s) disagree with the stock ledger")
    if not summaries:
        click.echo("product summaries consistent: every product's prices and stock flag match its variants")
    else:
        for slug, stored, fresh in summaries:
            click.echo(
                f"{slug}: summary (min, max, in stock) {stored}, variants say {fresh}"
                + (" (repaired)" if repair else ""),
                err=True,
            )
        if not repair:
            problems.append(f"{len(summaries)} product summar{'y' if len(summaries) == 1 else 'ies'} out of date")
    if not documents:
        click.echo("search index consistent: every visible product's document matches the product")
    else:
        click.echo(
            f"search index: {len(documents)} product(s) with an out-of-date document"
            + (" (index rebuilt)" if repair else f", e.g. product id {documents[0]}"),
            err=True,
        )
        if not repair:
            problems.append(f"{len(documents)} search document(s) out of date")
    if problems:
        raise click.ClickException("; ".join(problems) + ("" if repair else " (--repair fixes derived data)"))
