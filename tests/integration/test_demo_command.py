"""``webshop demo``: the SQLite quick start, run as a newcomer would, in an empty working directory.

The command creates ``webshop.db`` in the working directory, an admin, a generated demo catalog with
images, and serves the shop. Run again in the same directory, it reuses all of it. The README's second
command, ``webshop demo --catalog ../shared/catalog``, serves exactly that catalog from a database of
its own, and says so plainly when the first shop still holds the port. Links in the e-mails follow
the port the shop serves on (``webshop demo --port`` and ``webshop serve --port``).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import html
import io
import re
import sqlite3
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image

from tests.live import CLI, free_port, live_server, run_cli, running, shop_env

CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')
GENERATED_PASSWORD_RE = re.compile(
    r"^admin account: admin@example\.com  password: (\S+)  \(shown once; keep it\)$", re.M
)
RESULT_COUNT_RE = re.compile(r'<p class="result-count"[^>]*>\s*(\d+) products?')
PRODUCT_LINK_RE = re.compile(r'<a href="(/products/[^"]+)" class="card-link">')
NEXT_PAGE_RE = re.compile(r'<a rel="next" href="([^"]+)"')
CATEGORY_NAV_RE = re.compile(r'<nav aria-label="Categories".*?</nav>', re.S)
CATEGORY_LINK_RE = re.compile(r'href="[^"]*[?&](?:amp;)?category=([^"&]+)')
CARD_IMAGE_RE = re.compile(r'<img src="(/media/[^"]+\.webp)"')


def demo_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The live-test environment without WEBSHOP_DATABASE_URL: demo picks its default SQLite file."""
    env = shop_env("", workdir, **extra)
    del env["WEBSHOP_DATABASE_URL"]
    return env


@contextlib.contextmanager
def demo_server(env: dict[str, str], workdir: Path, *args: str, port: int | None = None) -> Iterator[tuple[str, Path]]:
    """Run ``webshop demo ARGS --port P`` in ``workdir`` until /health answers; yield (base URL, log file); stop it."""
    port = port or free_port()
    log_path = workdir.parent / f"{workdir.name}-demo-{port}.log"
    base_url = f"http://127.0.0.1:{port}"
    command = [*CLI, "demo", *args, "--port", str(port)]
    # The first run generates the demo catalog and its images before it serves: up to two minutes.
    with running(command, env=env, cwd=workdir, log_path=log_path, ready_url=f"{base_url}/health", start_timeout=120):
        yield base_url, log_path


def catalog_pages(base_url: str) -> tuple[int, list[str], set[str], str]:
    """Walk the home page and its next pages: (product count shown, product links, category slugs, first image)."""
    with httpx.Client(base_url=base_url, timeout=10) as client:
        home = client.get("/")
        assert home.status_code == 200
        count = RESULT_COUNT_RE.search(home.text)
        nav = CATEGORY_NAV_RE.search(home.text)
        image = CARD_IMAGE_RE.search(home.text)
        assert count and nav and image, home.text[:2000]
        categories = {html.unescape(slug) for slug in CATEGORY_LINK_RE.findall(nav.group(0))}
        links: list[str] = []
        page = home
        for _ in range(20):
            links += PRODUCT_LINK_RE.findall(page.text)
            following = NEXT_PAGE_RE.search(page.text)
            if following is None:
                break
            page = client.get(html.unescape(following.group(1)))
            assert page.status_code == 200
    return int(count.group(1)), links, categories, image.group(1)


def signs_in(base_url: str, email: str, password: str) -> bool:
    """Submit the sign-in form as a browser does; True when the shop signs the user in (303)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        token = CSRF_RE.search(client.get("/account/sign-in").text)
        assert token
        response = client.post(
            "/account/sign-in",
            data={"email": email, "password": password, "_csrf_token": token.group(1)},
            follow_redirects=False,
        )
    return response.status_code == 303


def database_counts(path: Path) -> dict[str, int]:
    """Row counts of the demo's SQLite file, read directly."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        counts = {
            table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed table names)
            for table in ("products", "variants", "product_images", "categories", "stock_movements", "users")
        }
        counts["product categories"] = db.execute("SELECT count(DISTINCT category_id) FROM products").fetchone()[0]
        counts["admins"] = db.execute("SELECT count(*) FROM users WHERE role = 'admin'").fetchone()[0]
    return counts


def test_demo_sets_up_and_serves_a_shop_and_a_second_run_reuses_it(tmp_path: Path) -> None:
    workdir = tmp_path / "fresh"
    workdir.mkdir()
    env = demo_env(workdir)

    with demo_server(env, workdir) as (base_url, log_path):
        log = log_path.read_text()
        assert "database: sqlite+aiosqlite:///webshop.db" in log
        generated = GENERATED_PASSWORD_RE.findall(log)
        assert len(generated) == 1, log
        password = generated[0]
        assert log.count(password) == 1, "the generated password is printed once"

        shown, links, categories, image_url = catalog_pages(base_url)
        assert shown >= 40
        assert len(set(links)) == len(links) == shown, "every product appears once across the pages"
        assert len(categories) >= 6, categories

        image = httpx.get(f"{base_url}{image_url}", timeout=10)
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/webp"
        with Image.open(io.BytesIO(image.content)) as decoded:
            assert decoded.format == "WEBP"

        assert signs_in(base_url, "admin@example.com", password)
        assert not signs_in(base_url, "admin@example.com", password + "x")

    database = workdir / "webshop.db"
    first = database_counts(database)
    assert first["products"] == shown
    assert first["product categories"] >= 6
    assert first["product_images"] == first["products"]
    assert (first["users"], first["admins"]) == (1, 1)

    with demo_server(env, workdir) as (base_url, log_path):
        log = log_path.read_text()
        assert "admin account: admin@example.com (already exists)" in log
        assert "password:" not in log, log
        assert "products: 0 created, 0 updated" in log
        assert catalog_pages(base_url)[0] == shown
        assert signs_in(base_url, "admin@example.com", password), "the first password still works"
    assert database_counts(database) == first


def test_demo_uses_the_admin_credentials_from_the_environment(tmp_path: Path) -> None:
    workdir = tmp_path / "fresh"
    workdir.mkdir()
    secret = "owner-password-from-env-4821"
    env = demo_env(workdir, WEBSHOP_ADMIN_EMAIL="owner@example.com", WEBSHOP_ADMIN_PASSWORD=secret)

    with demo_server(env, workdir) as (base_url, log_path):
        log = log_path.read_text()
        assert "admin account: owner@example.com  password: (from WEBSHOP_ADMIN_PASSWORD)" in log
        assert secret not in log
        assert signs_in(base_url, "owner@example.com", secret)

    counts = database_counts(workdir / "webshop.db")
    assert (counts["users"], counts["admins"]) == (1, 1)


def product_names(path: Path) -> set[str]:
    """The names of the products in a demo's SQLite file."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return {name for (name,) in db.execute("SELECT name FROM products")}


def catalog_names(catalog: Path) -> set[str]:
    """The product names a catalog folder's products.csv lists (the first row of each product has one;
    the shared catalog pads its columns with spaces)."""
    import csv

    with (catalog / "products.csv").open(newline="", encoding="utf-8") as handle:
        rows = [{key.strip(): (value or "").strip() for key, value in row.items()} for row in csv.DictReader(handle)]
    return {row["name"] for row in rows if row.get("name")}


def register_over_http(base_url: str, address: str) -> None:
    """Fill in the registration form as a browser does (the shop then mails a verification link)."""
    with httpx.Client(base_url=base_url, timeout=30) as client:
        token = CSRF_RE.search(client.get("/account/register").text)
        assert token
        response = client.post(
            "/account/register",
            data={"email": address, "name": "Ada", "password": "correct horse battery", "_csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text[:500]


def mail_in(outbox: Path, kind: str, timeout: float = 20) -> EmailMessage:
    """The first ``.eml`` of ``kind`` the shop writes to ``outbox`` (waits for the mail sender)."""
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(outbox.glob(f"*-{kind}.eml")) if outbox.is_dir() else []
        if found:
            return email.message_from_bytes(found[0].read_bytes(), policy=email.policy.default)  # type: ignore[return-value]
        assert time.monotonic() < deadline, f"no {kind} e-mail in {outbox}"
        time.sleep(0.2)


def links_in(message: EmailMessage) -> list[str]:
    """Every http(s) link in the message's plain-text part."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return [link.rstrip(".,;:") for link in re.findall(r"https?://[^\s<>)\]]+", body.get_content())]


def test_the_readme_commands_one_after_the_other_give_48_then_exactly_the_54_real_products(
    tmp_path: Path, shared_catalog: Path
) -> None:
    """README "Quick start": ``webshop demo``, then ``webshop demo --catalog ../shared/catalog`` in the
    same folder. While the first still serves, the second refuses at once (and creates nothing); after
    it stops, the second serves the real catalog alone, from ``webshop-catalog.db``."""
    workdir = tmp_path / "shop"
    workdir.mkdir()
    env = demo_env(workdir)
    port = free_port()

    with demo_server(env, workdir, port=port) as (base_url, _):
        assert catalog_pages(base_url)[0] == 48
        generated = database_counts(workdir / "webshop.db")

        busy = run_cli(["demo", "--catalog", str(shared_catalog), "--port", str(port)], env, workdir, timeout=60)
        output = busy.stdout + busy.stderr
        assert busy.returncode != 0, output
        assert f"port {port} on 127.0.0.1 is already in use — stop the other server or pass --port" in output
        assert "running on" not in output and "database:" not in output and "Traceback" not in output
        assert not (workdir / "webshop-catalog.db").exists(), "the database was not touched"
        assert catalog_pages(base_url)[0] == 48, "the first shop still serves"

    with demo_server(env, workdir, "--catalog", str(shared_catalog), port=port) as (base_url, log_path):
        log = log_path.read_text()
        assert "database: sqlite+aiosqlite:///webshop-catalog.db" in log
        assert GENERATED_PASSWORD_RE.search(log), "the catalog's shop has an admin of its own"
        shown, links, _, _ = catalog_pages(base_url)
        assert shown == 54 and len(set(links)) == 54
        assert "also holds" not in log, log  # no products from elsewhere

    real = database_counts(workdir / "webshop-catalog.db")
    assert real["products"] == 54
    assert product_names(workdir / "webshop-catalog.db") == catalog_names(shared_catalog)
    assert database_counts(workdir / "webshop.db") == generated, "the generated shop is left as it was"

    # Back to the generated shop: still its 48 products.
    with demo_server(env, workdir, port=port) as (base_url, _):
        assert catalog_pages(base_url)[0] == 48


def test_demo_mails_links_to_the_port_it_serves_on(tmp_path: Path) -> None:
    workdir = tmp_path / "fresh"
    workdir.mkdir()
    port = free_port()
    with demo_server(demo_env(workdir), workdir, port=port) as (base_url, _):
        register_over_http(base_url, "ada@example.com")
        links = links_in(mail_in(workdir / ".webshop" / "outbox", "verify_email"))
    assert any(link.startswith(f"http://127.0.0.1:{port}/account/verify-email/") for link in links), links
    assert {(urlsplit(link).hostname, urlsplit(link).port) for link in links} == {("127.0.0.1", port)}, links


def test_serve_with_workers_mails_links_to_its_port_unless_the_base_url_is_set(tmp_path: Path) -> None:
    """``webshop serve --port P --workers 2``: both worker processes build links to port P; with
    ``WEBSHOP_BASE_URL`` set, that URL wins."""
    outbox = tmp_path / "outbox"
    env = shop_env(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}", tmp_path, WEBSHOP_MAIL_OUTBOX_DIR=str(outbox))
    with live_server(env, tmp_path, workers=2) as base_url:
        for n in range(4):  # several requests: both workers answer some
            register_over_http(base_url, f"ada{n}@example.com")
        deadline = time.monotonic() + 20
        while len(list(outbox.glob("*-verify_email.eml"))) < 4:
            assert time.monotonic() < deadline, "not every verification e-mail was written"
            time.sleep(0.2)
    for path in outbox.glob("*-verify_email.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert any(link.startswith(f"{base_url}/account/verify-email/") for link in links_in(message))  # type: ignore[arg-type]

    public = tmp_path / "public"
    public.mkdir()
    env = shop_env(
        f"sqlite+aiosqlite:///{public / 'shop.db'}",
        public,
        WEBSHOP_MAIL_OUTBOX_DIR=str(public / "outbox"),
        WEBSHOP_BASE_URL="http://shop.example.com:8443",
    )
    with live_server(env, public) as base_url:
        register_over_http(base_url, "grace@example.com")
        links = links_in(mail_in(public / "outbox", "verify_email"))
    assert any(link.startswith("http://shop.example.com:8443/account/verify-email/") for link in links), links
