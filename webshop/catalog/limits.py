"""The catalog's field limits, in one place: the column lengths of ``webshop.db.models.catalog``, the
API's and forms' msgspec constraints (``webshop.catalog.schemas``), the service's checks
(``webshop.catalog.rules``) and the CSV importer (``webshop.catalog.csv.parse``) all read them here,
so a longer SKU is one change (and a migration), not five. Lengths are in characters.
"""

from __future__ import annotations

import re

PRODUCT_NAME = 200
PRODUCT_SLUG = 200
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
"""A product or category slug: lowercase letters and digits joined by single hyphens (``trail-shoes``);
match it with ``fullmatch``. The API schemas state the same pattern anchored (``SLUG.pattern``)."""
DESCRIPTION = 20_000
CATEGORY_NAME = 120
CATEGORY_SLUG = 140
FACET_NAME = 60
FACET_VALUE = 120
OPTION_GROUP = 60
OPTION_VALUE = 120
OPTION_GROUPS = 5
"""Option groups (variant axes) a product may have."""
SKU = 64
TAX_CATEGORY = 40
CURRENCY = 3
"""ISO 4217 alphabetic code."""
IMAGE_ALT = 255
IMAGE_SOURCE_NAME = 255
STOCK = 2**31 - 1
"""Units on hand at most: the largest value of the 32-bit ``stock`` column."""
LOW_STOCK_THRESHOLD = 5
"""A new variant's low-stock threshold unless one is given (the stock page calls it low at this many units)."""
PRICE = 2**31 - 1
"""A variant's price at most, in minor units: the largest value of the 32-bit ``price`` column (the
API's ``MinorUnits`` bound)."""
