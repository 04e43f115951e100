"""Generated catalogs in the import format: a small, good-looking demo, or a large one for load tests.

``generate_catalog`` writes ``products.csv`` (the same 14 columns as Vendure's demo catalog, read back
by ``webshop.catalog.csv.parse.parse_catalog``) and placeholder JPEGs in ``images/``. Everything is
derived from a seeded ``random.Random``: the same arguments write the same files.
"""

from __future__ import annotations

import csv
import random
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from webshop.catalog.csv.parse import COLUMNS
from webshop.catalog.slugs import slugify
from webshop.media import placeholder_image

MAX_IMAGE_POOL = 60
# At most this many products get an image of their own (labelled with their name); beyond it the
# products share a pool of MAX_IMAGE_POOL images labelled with their subcategory.
OWN_IMAGE_LIMIT = MAX_IMAGE_POOL
# Catalogs of this size and above use every subcategory, smaller ones the six of the demo catalog.
LARGE_CATALOG = 200


@dataclass(frozen=True)
class _Options:
    """A variant axis: group name, values, and what each step adds to the base price (minor units)."""

    group: str
    values: tuple[str, ...]
    step: int = 0
    color_facets: bool = False  # each value is also a color facet of its variant (like the Cafe Chair)


@dataclass(frozen=True)
class _Subcategory:
    top: str
    name: str
    code: str
    adjectives: tuple[str, ...]
    nouns: tuple[str, ...]
    brands: tuple[str, ...]
    colors: tuple[str, ...]
    price_range: tuple[int, int]  # whole major units
    options: tuple[_Options, ...]
    blurbs: tuple[str, ...]
    demo: bool = True  # used in small catalogs too


def _load_tree(path: Path) -> tuple[tuple[str, ...], tuple[_Subcategory, ...]]:
    """The blurbs every product may get and the subcategories, from ``generator_tree.toml`` (data, not code:
    its header says what each key means)."""
    with path.open("rb") as file:
        data = tomllib.load(file)
    subcategories = tuple(
        _Subcategory(
            top=sub["top"],
            name=sub["name"],
            code=sub["code"],
            adjectives=tuple(sub["adjectives"]),
            nouns=tuple(sub["nouns"]),
            brands=tuple(sub["brands"]),
            colors=tuple(sub["colors"]),
            price_range=(sub["price_range"][0], sub["price_range"][1]),
            options=tuple(
                _Options(o["group"], tuple(o["values"]), o.get("step", 0), o.get("color_facets", False))
                for o in sub.get("options", ())
            ),
            blurbs=tuple(sub["blurbs"]),
            demo=sub.get("demo", True),
        )
        for sub in data["subcategory"]
    )
    return tuple(data["common_blurbs"]), subcategories


_COMMON_BLURBS, _TREE = _load_tree(Path(__file__).with_name("generator_tree.toml"))


def generate_catalog(out_dir: Path, products: int, *, seed: int = 7, demo: bool = False) -> None:
    """Write a generated catalog: ``out_dir/products.csv`` and ``out_dir/images/*.jpg``.

    The catalog has a two-level category tree (3 top-level categories and 6 subcategories, or 4 and
    11 from ``LARGE_CATALOG`` products on), brand and color facets, about a quarter of the products
    with several variants, prices from a few to a few thousand (two decimals, USD) and stock mostly
    between 0 and 100, some of it 0. Up to ``OWN_IMAGE_LIMIT`` products each get an image labelled
    with their name; larger catalogs share a pool of at most ``MAX_IMAGE_POOL`` images.

    Args:
        out_dir: Folder to write to (created; existing files of the same names are overwritten).
        products: Number of products, at least 1.
        seed: Seed of the random choices; the same seed writes the same catalog.
        demo: The flavour ``webshop demo`` uses: no model codes in names (every name is still
            unique), every subcategory used evenly, and at least a quarter of products with variants.

    Raises:
        ValueError: ``products`` is less than 1.
        OSError: ``out_dir`` cannot be written.
    """
    if products < 1:
        raise ValueError("a catalog needs at least one product")
    rng = random.Random(seed)  # noqa: S311 - sample data, not security
    tree = [sub for sub in _TREE if sub.demo or (products >= LARGE_CATALOG and not demo)]
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)

    rows: list[list[str]] = []
    slugs: set[str] = set()
    images: dict[str, str] = {}  # file name -> label
    names = _demo_names(tree, products, rng) if demo else None
    own_images = products <= OWN_IMAGE_LIMIT
    pool_per_sub = max(1, MAX_IMAGE_POOL // len(tree))
    for index in range(products):
        sub = tree[index % len(tree)] if demo else rng.choice(tree)
        if names is not None:
            name = names[index]
        else:
            name = f"{rng.choice(sub.adjectives)} {rng.choice(sub.nouns)}"
            if products > OWN_IMAGE_LIMIT:
                name += f" {rng.choice('ABCDEFGHKLMNPRSTVXZ')}{rng.randint(10, 999)}"
        slug = _unique_slug(slugify(name), slugs)
        if own_images:
            image = f"{slug}.jpg"
            images[image] = name
        else:
            number = rng.randrange(pool_per_sub)
            image = f"{slugify(sub.name)}-{number + 1}.jpg"
            images[image] = f"{sub.name} {number + 1}"
        rows.extend(_product_rows(index, sub, name, slug, image, rng, demo=demo, len_tree=len(tree)))

    with (out_dir / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    for position, (file_name, label) in enumerate(sorted(images.items())):
        path = image_dir / file_name
        data = placeholder_image(label, seed=seed * 1000 + position)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)


def _demo_names(tree: list[_Subcategory], products: int, rng: random.Random) -> list[str]:
    """Unique "adjective noun" names, product ``i`` in subcategory ``tree[i % len(tree)]``."""
    pools: list[list[str]] = []
    for sub in tree:
        adjectives, nouns = list(sub.adjectives), list(sub.nouns)
        rng.shuffle(adjectives)
        rng.shuffle(nouns)
        # Walk the diagonals of the adjective x noun grid, so nouns vary before adjectives repeat.
        pool = [
            f"{adjectives[(row + shift) % len(adjectives)]} {nouns[row % len(nouns)]}"
            for shift in range(len(adjectives))
            for row in range(len(nouns))
        ]
        pools.append(list(dict.fromkeys(pool)))
    names: list[str] = []
    for index in range(products):
        pool = pools[index % len(tree)]
        turn = index // len(tree)
        base = pool[turn % len(pool)]
        names.append(base if turn < len(pool) else f"{base} {turn // len(pool) + 1}")
    return names


def _unique_slug(slug: str, taken: set[str]) -> str:
    candidate, number = slug, 2
    while candidate in taken:
        candidate, number = f"{slug}-{number}", number + 1
    taken.add(candidate)
    return candidate


def _product_rows(
    index: int,
    sub: _Subcategory,
    name: str,
    slug: str,
    image: str,
    rng: random.Random,
    *,
    demo: bool,
    len_tree: int,
) -> list[list[str]]:
    """The CSV rows of one product: the product row (also its first variant), then its variants."""
    facets = [f"category:{sub.top}", f"category:{sub.name}"]
    if sub.brands and rng.random() < 0.8:
        facets.append(f"brand:{rng.choice(sub.brands)}")
    low, high = sub.price_range
    base_price = _price(rng, low, high)
    # Demo: every third product of each subcategory has variants; otherwise about a quarter.
    multi = (index // len_tree) % 3 == 0 if demo else rng.random() < 0.25
    options = rng.choice(sub.options) if multi and sub.options else None
    if sub.colors and not (options and options.color_facets):
        for color in rng.sample(sub.colors, k=1 if rng.random() < 0.8 else 2):
            facets.append(f"color:{color}")
    description = f"Meet the {name}. {rng.choice(sub.blurbs)} {rng.choice(_COMMON_BLURBS)}"

    values: tuple[str | None, ...] = (None,)
    if options is not None:
        count = rng.randint(2, len(options.values))
        values = options.values[:count]
    rows: list[list[str]] = []
    for position, value in enumerate(values):
        first = position == 0
        variant_facets = ""
        if options is not None and options.color_facets and value is not None:
            variant_facets = f"color:{_COLOR_FACET.get(value, value.lower())}"
        price = base_price + (options.step * position if options else 0)
        rows.append(
            [
                name if first else "",
                slug if first else "",
                description if first else "",
                image if first else "",
                "|".join(facets) if first else "",
                options.group if first and options else "",
                value or "",
                f"{sub.code}-{index + 1:06d}" + (f"-{position + 1}" if options else ""),
                f"{price // 100}.{price % 100:02d}",
                "standard",
                str(_stock(rng)),
                "",
                "",
                variant_facets,
            ]
        )
    return rows


_COLOR_FACET = {
    "Mustard": "yellow",
    "Mint": "green",
    "Pearl": "white",
    "Midnight": "black",
    "Chalk": "white",
    "Ocean": "blue",
}


def _price(rng: random.Random, low: int, high: int) -> int:
    """A price in minor units from ``low`` to ``high`` major units, skewed low; most end in .99."""
    major = round(low + (high - low) * rng.random() ** 2.2)
    return cast("int", major * 100 - 1 if rng.random() < 0.7 else major * 100)


def _stock(rng: random.Random) -> int:
    """Units on hand: mostly 5 to 100, sometimes 0 (sold out) or 1-4 (running low)."""
    roll = rng.random()
    if roll < 0.08:
        return 0
    if roll < 0.18:
        return rng.randint(1, 4)
    return rng.randint(5, 100)
