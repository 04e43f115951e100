"""``webshop demo``: the SQLite quick start, run as a newcomer would, in an empty working directory.

The command creates ``webshop.db`` in the working directory, an admin, a generated demo catalog with
images, and serves the shop. Run again in the same directory, it reuses all of it.
"""

from __future__ import annotations

import contextlib
import html
import io
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from PIL import Image

from tests.live import CLI, free_port, shop_env

CSRF_RE = re.compile(r'name="_csrf_token" value="([^"]+)"')
GENERATED_PASSWORD_RE = re.compile(
    r"^admin account: admin@example\.com  password: (\S+)  \(shown once; keep it\)$", re.M
)
RESULT_COUNT_RE = re.compile(r'<p class="result-count"[^>]*>\s*(\d+) products?')
PRODUCT_LINK_RE = re.compile(r'<a href="(/products/[^"]+)" class="card-link">')
NEXT_PAGE_RE = re.compile(r'<a rel="next" href="([^"]+)">')
CATEGORY_NAV_RE = re.compile(r'<nav aria-label="Categories".*?</nav>', re.S)
CATEGORY_LINK_RE = re.compile(r'href="[^"]*[?&](?:amp;)?category=([^"&]+)')
CARD_IMAGE_RE = re.compile(r'<img src="(/media/[^"]+\.webp)"')


def demo_env(workdir: Path, **extra: str) -> dict[str, str]:
    """The live-test environment without WEBSHOP_DATABASE_URL: demo picks its default SQLite file."""
    env = shop_env("", workdir, **extra)
    del env["WEBSHOP_DATABASE_URL"]
    return env


@contextlib.contextmanager
def demo_server(env: dict[str, str], workdir: Path) -> Iterator[tuple[str, Path]]:
    """Run ``webshop demo --port P`` in ``workdir`` until /health answers; yield (base URL, log file); stop it."""
    port = free_port()
    log_path = workdir.parent / f"{workdir.name}-demo-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [*CLI, "demo", "--port", str(port)], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise AssertionError(f"webshop demo exited early:\n{log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise AssertionError(f"webshop demo did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            yield base_url, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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
