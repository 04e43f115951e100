"""Generated catalogs in the import format: a small, good-looking demo, or a large one for load tests.

``generate_catalog`` writes ``products.csv`` (the same 14 columns as Vendure's demo catalog, read back
by ``webshop.catalog.csv.parse.parse_catalog``) and placeholder JPEGs in ``images/``. Everything is
derived from a seeded ``random.Random``: the same arguments write the same files.
"""

from __future__ import annotations

import csv
import random
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


_COMMON_BLURBS = (
    "Built to last, with a two-year warranty and free returns within 30 days.",
    "Thoughtfully designed, carefully made, and packed in recycled cardboard.",
    "A customer favourite: simple to use, easy to clean, and made to be repaired.",
)

_TREE: tuple[_Subcategory, ...] = (
    _Subcategory(
        "Electronics",
        "Computers",
        "CMP",
        ("Ultra", "Pro", "Compact", "Slim", "Everyday", "Studio", "Travel", "Classic"),
        ("Laptop", "Keyboard", "Mouse", "Monitor", "Docking Station", "Webcam", "Tablet", "Mini PC"),
        ("Lenvix", "Aperto", "Kestrel", "Northwind", "Voltra"),
        ("black", "silver", "white"),
        (19, 2499),
        (
            _Options("storage", ("128GB", "256GB", "512GB", "1TB"), step=10000),
            _Options("screen size", ("13 inch", "15 inch"), step=20000),
        ),
        (
            "Fast, quiet and efficient, it keeps up with everything from spreadsheets to photo editing.",
            "A clean design with a sturdy aluminium body, and ports where you need them.",
        ),
    ),
    _Subcategory(
        "Electronics",
        "Photo",
        "PHO",
        ("Vintage", "Travel", "Classic", "Compact", "Studio", "Pro", "Retro", "Field"),
        ("Camera", "Lens", "Tripod", "Flash", "Camera Bag", "Light Meter", "Film Scanner", "Strap"),
        ("Optika", "Luma", "Fotar", "Brightline"),
        ("black", "silver", "brown"),
        (12, 1899),
        (_Options("kit", ("Body only", "With 35mm lens", "With zoom lens"), step=25000),),
        (
            "Sharp, contrasty images with a pleasing background blur, even in low light.",
            "Solid controls with a satisfying click, and a finish that ages gracefully.",
        ),
    ),
    _Subcategory(
        "Electronics",
        "Audio",
        "AUD",
        ("Noise-Cancelling", "Bluetooth", "Studio", "Portable", "Hi-Fi", "Waterproof"),
        ("Headphones", "Speaker", "Earbuds", "Turntable", "Soundbar", "Microphone"),
        ("Sonora", "Decibel", "Echo Lane", "Voltra"),
        ("black", "white", "blue", "red"),
        (15, 999),
        (_Options("color", ("Midnight", "Chalk", "Ocean"), color_facets=True),),
        ("Rich, balanced sound with deep bass and crisp highs, for hours on one charge.",),
        demo=False,
    ),
    _Subcategory(
        "Home & Garden",
        "Furniture",
        "FUR",
        ("Nordic", "Mid-Century", "Rustic", "Modern", "Scandi", "Industrial", "Cosy", "Oak"),
        ("Armchair", "Coffee Table", "Bookshelf", "Side Table", "Bench", "Floor Lamp", "Sofa", "Desk"),
        ("Hemma", "Woodline", "Casa Nova", "Fjord"),
        ("gray", "white", "green", "yellow", "blue"),
        (39, 1499),
        (
            _Options("color", ("Mustard", "Mint", "Pearl"), color_facets=True),
            _Options("size", ("Small", "Medium", "Large"), step=4000),
        ),
        (
            "Solid wood and honest joinery make it steady, quiet and easy to live with.",
            "Light enough to move around, yet stable enough for the liveliest family members.",
        ),
    ),
    _Subcategory(
        "Home & Garden",
        "Plants",
        "PLT",
        ("Mini", "Potted", "Giant", "Variegated", "Desk", "Indoor", "Lucky", "Jungle"),
        ("Monstera", "Fern", "Cactus", "Snake Plant", "Orchid", "Fiddle Leaf Fig", "Succulent", "Pothos"),
        (),
        ("green", "pink", "white"),
        (5, 129),
        (_Options("pot size", ("Small", "Medium", "Large"), step=1500),),
        (
            "Easy to care for: bright indirect light and a drink when the top of the soil is dry.",
            "Cleans the air and brings a calm, green corner to any room.",
        ),
    ),
    _Subcategory(
        "Home & Garden",
        "Kitchen",
        "KIT",
        ("Cast-Iron", "Copper", "Ceramic", "Stoneware", "Enamel", "Bamboo"),
        ("Skillet", "Teapot", "Mixing Bowl", "Chef's Knife", "Cutting Board", "Dutch Oven"),
        ("Cuoco", "Hearth & Co", "Maison Blanc"),
        ("red", "black", "white", "blue"),
        (9, 349),
        (_Options("size", ("20 cm", "24 cm", "28 cm"), step=1500),),
        ("Even heat, a lifetime of use, and dishwasher safe.",),
        demo=False,
    ),
    _Subcategory(
        "Sports & Outdoor",
        "Equipment",
        "EQP",
        ("Pro", "Lightweight", "Competition", "Training", "Everyday", "Elite", "Studio", "Club"),
        ("Dumbbell Set", "Yoga Mat", "Kettlebell", "Tennis Racket", "Skipping Rope", "Boxing Gloves"),
        ("Forma", "Peakline", "Stridex", "Athlon"),
        ("black", "blue", "red", "green"),
        (8, 499),
        (_Options("weight", ("5 kg", "10 kg", "20 kg"), step=2000),),
        (
            "Designed with coaches for a secure grip and consistent feel, session after session.",
            "Durable materials that shrug off sweat, chalk and the occasional drop.",
        ),
    ),
    _Subcategory(
        "Sports & Outdoor",
        "Footwear",
        "FTW",
        ("Classic", "Retro", "Urban", "Canvas", "Leather", "Lightweight", "Cushioned", "Everyday"),
        ("Running Shoe", "Sneaker", "Boot", "Sandal", "Slip-On", "High-Top"),
        ("Stridex", "Peakline", "Aerofoot", "Kicks & Co"),
        ("black", "white", "blue", "pink", "gray"),
        (29, 249),
        (_Options("size", ("Size 40", "Size 42", "Size 44", "Size 46")),),
        (
            "A breathable upper and responsive cushioning keep every step light.",
            "Grippy rubber outsole for wet pavements and dusty trails alike.",
        ),
    ),
    _Subcategory(
        "Sports & Outdoor",
        "Camping",
        "CMPG",
        ("Ultralight", "Four-Season", "Waterproof", "Insulated", "Packable"),
        ("Tent", "Sleeping Bag", "Backpack", "Camping Stove", "Headlamp", "Water Filter"),
        ("Peakline", "Wildside", "Basecamp"),
        ("green", "orange", "blue", "gray"),
        (14, 699),
        (_Options("capacity", ("1 person", "2 person", "3 person"), step=5000),),
        ("Packs small, sets up fast, and keeps you warm and dry when the weather turns.",),
        demo=False,
    ),
    _Subcategory(
        "Books & Media",
        "Books",
        "BOK",
        ("Illustrated", "Pocket", "Collector's", "Annotated", "Hardcover"),
        ("Cookbook", "Field Guide", "Atlas", "Novel", "Sketchbook"),
        ("Pageturn Press", "Inkwell"),
        (),
        (6, 89),
        (),
        ("Beautifully printed on FSC-certified paper, with a ribbon bookmark.",),
        demo=False,
    ),
    _Subcategory(
        "Books & Media",
        "Games",
        "GAM",
        ("Strategy", "Party", "Cooperative", "Family", "Deluxe"),
        ("Board Game", "Card Game", "Puzzle", "Dice Set"),
        ("Meeple Works", "Tabletop Co"),
        (),
        (7, 149),
        (),
        ("Quick to learn, hard to master, and different every time you play.",),
        demo=False,
    ),
)


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
