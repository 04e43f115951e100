"""Products: ``ProductService`` (the shop's reads of one product, the admin's product writes; variant
and photo verbs come from the ``ProductVariants`` and ``ProductImages`` mixins) and the variant picker.

The reads behind the catalog page and ``/api/products`` live in ``webshop.catalog.browse``;
``browse``/``search``/``facets`` call them. Every write ends with ``catalog_changed`` before it
commits, so the product summaries, the search index and the catalog version move with the change.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload, selectinload

from webshop.audit.service import diff
from webshop.catalog.admin_list import ProductAdminList
from webshop.catalog.browse import (
    DisplayedProduct,
    api_page,
    browse_catalog,
    facet_summary,
    product_for_display,
)
from webshop.catalog.facet_spelling import lock_spellings, stored_spellings
from webshop.catalog.images import ProductImages
from webshop.catalog.query import (
    CatalogPage,
    CatalogQuery,
    FacetValue,
    ProductCard,
    visible_products,
)
from webshop.catalog.rules import (
    _check_variant_set,
    _clean_product,
    _clean_variant,
    _product_snapshot,
    _replace_facets,
    facet_dict,
)
from webshop.catalog.schemas import ProductPatch, ProductWrite, VariantUpdate, VariantWrite
from webshop.catalog.slugs import free_slug, slugify
from webshop.catalog.summaries import catalog_write
from webshop.catalog.variants import ProductVariants
from webshop.db.models import AuditEvent, Category, Product, ProductFacet, User, Variant, WebhookEvent
from webshop.db.repository import repository_for, sent
from webshop.errors import PermissionDenied, ValidationFailed
from webshop.shops.service import ShopService
from webshop.webhooks.events import queue_product_events

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config import ShopSettings

_ADMIN_LOAD = [
    selectinload(Product.variants),
    selectinload(Product.images),
    selectinload(Product.facets),
    joinedload(Product.shop),
]
"""What a product page and the admin's product form show: variants, photos, facets and the shop."""
NOT_SAVED = "The product was not saved. Please correct the marked fields."
"""``ValidationFailed.detail`` of a refused product write (the admin form shows it on top)."""


class ProductService(ProductAdminList, ProductVariants, ProductImages, SQLAlchemyAsyncRepositoryService[Product]):
    """Products as the shop shows them: browsing, and one product with its variants and photos."""

    repository_type = repository_for(Product)

    def __init__(self, session: AsyncSession, *, shop: ShopSettings | None = None, **repo_kwargs: Any) -> None:
        """A service on ``session``; ``shop`` (given by the app's provider) names the allowed tax categories
        (``shop.tax_rates_bp``) and where photos go (``shop.media_dir``, ``webshop.media.MediaFolder``)."""
        super().__init__(session=session, **repo_kwargs)
        self.shop = shop

    # --- the shop's reads (webshop.catalog.browse) ---------------------------------------------------

    async def browse(self, query: CatalogQuery, *, page_size: int = 24) -> CatalogPage:
        """Return one page of the catalog for ``query`` (see ``webshop.catalog.browse.browse_catalog``).

        Args:
            query: Filters, sort and page (see ``CatalogQuery``).
            page_size: Products per page.

        Returns:
            A ``CatalogPage``; a page past the end has no items (the caller shows an empty state).

        Raises:
            NotFound: ``query.category`` names no category.
        """
        return await browse_catalog(self.repository.session, query, page_size=page_size)

    async def search(
        self,
        query: CatalogQuery,
        *,
        limit: int,
        cursor: str | None = None,
        price_min: int | None = None,
        price_max: int | None = None,
    ) -> tuple[list[ProductCard], str | None]:
        """One page of products for the API, with keyset (cursor) pagination (see ``browse.api_page``).

        Args:
            query: Search text, category, facets, price range, stock filter and sort (``page`` ignored).
            limit: Products per page (1-100).
            cursor: ``next_cursor`` of the previous page, or ``None`` for the first page.
            price_min / price_max: Only products with a variant priced in this range (minor units);
                when given they replace ``query``'s.

        Returns:
            ``(cards, next_cursor)``; ``next_cursor`` is ``None`` on the last page.

        Raises:
            NotFound: ``query.category`` names no category.
            ValidationFailed: the cursor is not one this endpoint issued for this sort.
        """
        if price_min is not None or price_max is not None:
            query = CatalogQuery.from_params(
                q=query.q,
                category=query.category,
                brand=list(query.facets.get("brand", ())),
                color=list(query.facets.get("color", ())),
                sort=query.sort,
                page=query.page,
                price_min=price_min if price_min is not None else query.price_min,
                price_max=price_max if price_max is not None else query.price_max,
                in_stock=query.in_stock,
                currency=query.currency,
            )
        return await api_page(self.repository.session, query, limit=limit, cursor=cursor)

    async def facets(self, query: CatalogQuery) -> tuple[int, dict[str, list[FacetValue]]]:
        """``(total, {facet: [FacetValue]})`` of the products matching ``query`` (sort and page ignored).

        Raises:
            NotFound: ``query.category`` names no category.
        """
        return await facet_summary(self.repository.session, query)

    async def get_visible(self, product_id: int) -> Product:
        """The visible product with ``product_id``, with variants, photos, facets and category.

        Raises:
            NotFound: no visible product has that id (soft-deleted and inactive ones included).
        """
        return await self._visible(Product.id == product_id, "There is no such product.")

    async def display(self, *, slug: str | None = None, product_id: int | None = None) -> DisplayedProduct:
        """A visible product for its page or ``GET /api/products/{id}``, by ``slug`` or ``product_id``,
        the category list for its trail and a key for caches of its rendering
        (``webshop.catalog.browse.product_for_display``: cached per catalog version, stock read
        fresh). Treat the product as read-only.

        Raises:
            NotFound: no visible product has that slug or id.
        """
        session = self.repository.session
        if slug is not None:
            return await product_for_display(session, slug, lambda: self.get_visible_by_slug(slug))
        pid = int(product_id or 0)
        return await product_for_display(session, pid, lambda: self.get_visible(pid))

    async def get_visible_by_slug(self, slug: str) -> Product:
        """Return the visible product with ``slug``, its variants, photos, facets and category loaded.

        Raises:
            NotFound: no visible product has that slug (soft-deleted and inactive ones included).
        """
        return await self._visible(Product.slug == slug, "We could not find that product. It may have been removed.")

    async def _visible(self, condition: Any, missing: str) -> Product:
        """The visible product matching ``condition``, variants, photos and facets loaded; ``NotFound(missing)``."""
        return await self.get_one(
            condition, visible_products(), load=_ADMIN_LOAD, error_messages={"not_found": missing}
        )

    async def variant_with_product(self, *, variant_id: int | None = None, sku: str | None = None) -> Variant | None:
        """The variant with ``variant_id`` (or ``sku``) and its product, visible or not; ``None`` if unknown."""
        if variant_id is None and not sku:
            return None
        condition = Variant.id == variant_id if variant_id is not None else Variant.sku == sku
        found: Variant | None = await self.repository.session.scalar(
            select(Variant).where(condition).options(selectinload(Variant.product))
        )
        return found

    # --- admin: product management (issue 5 pages and the issue 4 admin API) -----------------------------
    #
    # Every write validates everything first (ValidationFailed with field_errors for every bad field at
    # once), then writes inside a savepoint, records AuditEvents in the same transaction and commits
    # explicitly, so a failure never leaves half a product behind and a commit failure is never reported
    # as success. Stock only changes through webshop.stock.service (conditional UPDATE + ledger row).

    async def get_for_admin(self, product_id: int, *, actor: Any | None = None) -> Product:
        """The product with ``product_id`` for the admin pages, soft-deleted or inactive ones included.

        Variants, photos, facets and category are loaded and refreshed from the database (stock may
        have been changed by conditional updates in this session). Given an ``actor``, the product must
        be of a shop they run (``check_runs``): every write verb loads its product this way.

        Raises:
            NotFoundError: (advanced-alchemy's, answered as ``NotFound``) no product has that id, or
                ``actor`` does not run its shop.
        """
        product = await self.get_one(
            Product.id == product_id,
            load=_ADMIN_LOAD,
            execution_options={"populate_existing": True},
            error_messages={"not_found": "There is no such product."},
        )
        await self.check_runs(actor, product.shop_id)
        return product

    async def product_history(self, product: Product, *, limit: int = 100) -> list[AuditEvent]:
        """Audit events about ``product``, its variants and their stock, newest first (at most ``limit``).

        Its variants are its current ones and those removed from it (their ``variant-delete`` events on
        the product name them by ``variant_id``), so removing a variant keeps its earlier events in the
        trail (OWASP Logging Cheat Sheet: a trail is appended to, never cut)."""
        audit = self.audit
        events = await audit.for_entity("product", [product.id], limit=limit)
        removals = await self.repository.session.scalars(
            select(AuditEvent.changes).where(
                AuditEvent.entity_type == "product",
                AuditEvent.entity_id == product.id,
                AuditEvent.action == "variant-delete",
            )
        )
        removed = [ids[0] for changes in removals if isinstance(ids := (changes or {}).get("variant_id"), list)]
        variant_ids = [v.id for v in product.variants] + [i for i in removed if isinstance(i, int)]
        if variant_ids:
            events += await audit.for_entity("variant", variant_ids, limit=limit)
            events += await audit.for_entity("stock", variant_ids, limit=limit)
        events.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return events[:limit]

    async def create_product(
        self,
        data: ProductWrite,
        variants: Sequence[VariantWrite],
        *,
        actor: User | None,
    ) -> Product:
        """Create a product with its variants (at least one) and their initial stock; committed.

        The slug, when empty, is derived from the name (``"Trail Shoe 2"`` → ``trail-shoe-2``) and made
        unique with a ``-2``, ``-3``... suffix; a slug given explicitly must be free. Initial stock is
        written through ``set_stock`` (a ledger row of reason ``adjustment``, reference "initial stock").
        Audit: one ``product``/``create`` event, one ``variant``/``create`` per variant, ``stock`` events.

        Args:
            data: The product's own fields.
            variants: Its variants, in display order.
            actor: The admin or shop member (``None`` for the command line).

        Returns:
            The new product with variants, photos and facets loaded.

        Raises:
            ValidationFailed: ``field_errors`` for every bad field at once, keyed ``name``, ``slug``,
                ``description``, ``category_id``, ``facets``, ``option_groups``, ``variants`` and
                ``variants[i].<field>`` (``sku``, ``price``, ``option_values``, ``currency``,
                ``tax_category``, ``stock``, ``low_stock_threshold``); unknown category, SKU used twice
                in the product or already in the shop, option values not one per group, negative
                price or stock... Nothing is written.
            PermissionDenied: ``data.shop_id`` names a shop ``actor`` is not a member of, or ``actor``
                runs no shop (see ``ShopService.shop_for_new_product``).
        """
        session = self.repository.session
        shop_id = await ShopService(session=session).shop_for_new_product(actor, data.shop_id)
        values, rows, errors = await self._checked_new(data, variants)
        if errors:
            raise ValidationFailed(NOT_SAVED, field_errors=errors)

        async with catalog_write(session) as changed:
            spellings = await stored_spellings(session, values["facets"], for_write=True)
            facets = spellings.mapping(values.pop("facets"))
            product = Product(**values, shop_id=shop_id)
            product.facets = [ProductFacet(facet=f, value=v) for f, vs in facets.items() for v in vs]
            stocks = []
            for position, row in enumerate(rows):
                stocks.append(row.pop("stock"))
                product.variants.append(Variant(**row, stock=0, position=position))
            session.add(product)
            await session.flush()
            changed.add(product.id)
            summary = f"Created “{product.name}” with {len(rows)} variant(s)."
            snapshot = diff({}, _product_snapshot(product, facets))  # a creation: the fields it sets
            self.audit.record(actor, "product", product.id, "create", summary=summary, changes=snapshot)
            for variant, stock in zip(product.variants, stocks, strict=True):
                await self._record_new_variant(variant, stock, self.audit, actor)
            await queue_product_events(session, WebhookEvent.PRODUCT_CREATED, [product.id])
        return await self.get_for_admin(product.id)

    async def _checked_new(
        self, data: ProductWrite, variants: Sequence[VariantWrite]
    ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, str]]:
        """``create_product``'s input cleaned and checked: ``(product values, variant rows, field errors)``."""
        errors: dict[str, str] = {}
        values = _clean_product(msgspec.structs.asdict(data), errors)
        await self._check_category(values, errors)
        if "slug" not in errors:
            if values.get("slug"):
                await self._check_slug_free(values["slug"], None, errors)
            elif "name" not in errors:
                values["slug"] = await self._free_slug(slugify(values["name"]) or "product")
        groups = values.get("option_groups", [])
        rows = [
            _clean_variant(msgspec.structs.asdict(v), errors, f"variants[{i}].", self.tax_categories)
            for i, v in enumerate(variants)
        ]
        if not variants:
            errors["variants"] = "Add at least one variant."
        if "option_groups" not in errors:
            _check_variant_set(groups, rows, errors, [f"variants[{i}]." for i in range(len(rows))])
        await self._check_skus_free([(f"variants[{i}].", r.get("sku")) for i, r in enumerate(rows)], None, errors)
        return values, rows, errors

    async def check_new_product(
        self, data: ProductWrite, variants: Sequence[VariantWrite], *, actor: User | None
    ) -> dict[str, str]:
        """The ``field_errors`` ``create_product`` would raise for this input (``{}``: it would pass the
        rules), writing nothing: the product form asks it when some of its own fields could not be
        read, so that the admin sees every problem in one round. The shop ``actor`` may not add to is
        one more (``shop_id``), not a ``PermissionDenied``."""
        errors: dict[str, str] = {}
        try:
            await ShopService(session=self.repository.session).shop_for_new_product(actor, data.shop_id)
        except (ValidationFailed, PermissionDenied) as exc:
            errors["shop_id"] = exc.field_errors.get("shop_id", exc.detail)
        return errors | (await self._checked_new(data, variants))[2]

    async def check_product_update(
        self,
        product: Product,
        data: ProductWrite | ProductPatch,
        variants: Sequence[VariantUpdate] = (),
        new_variants: Sequence[VariantWrite] = (),
    ) -> dict[str, str]:
        """The ``field_errors`` ``update_product`` would raise (``{}``: none) for ``product`` as the caller
        read it (``get_for_admin``, which checked who may edit it). Writes nothing; as
        ``check_new_product``. A stale ``stock_seen`` is not a rule here (``StockChanged`` comes on saving)."""
        return (await self._checked_update(product, data, variants, new_variants))[3]

    async def update_product(
        self,
        product_id: int,
        data: ProductWrite | ProductPatch,
        *,
        actor: User | None,
        variants: Sequence[VariantUpdate] = (),
        new_variants: Sequence[VariantWrite] = (),
    ) -> Product:
        """Change a product's fields, and optionally its variants, in one transaction; committed.

        ``data`` as a ``ProductWrite`` replaces every field (an empty ``slug`` keeps the current one);
        as a ``ProductPatch`` only the fields that are set change. ``variants`` updates existing
        variants (stock through ``set_stock`` against the level the admin saw), ``new_variants`` adds
        some. The rules are checked on the result: every variant has one value per option group, SKUs
        are unique, option combinations are not repeated. Soft-deleted products can be edited too.
        Audit: ``product``/``update`` with ``{field: [before, after]}``, ``variant`` events, ``stock`` events.

        Args:
            product_id: The product.
            data: New field values (see above).
            actor: The admin.
            variants: Changes to existing variants of this product (``VariantUpdate.id``).
            new_variants: Variants to add at the end.

        Returns:
            The product, reloaded.

        Raises:
            NotFound: no such product.
            ValidationFailed: ``field_errors`` keyed like ``create_product``'s, ``variants[i].<field>``
                for ``variants`` and ``new_variants[i].<field>`` for ``new_variants``. Nothing is written.
            StockChanged: a variant's stock is no longer ``stock_seen``; nothing is written.
        """
        product = await self.get_for_admin(product_id, actor=actor)
        values, updates, added, errors = await self._checked_update(product, data, variants, new_variants)
        if errors:
            raise ValidationFailed(NOT_SAVED, field_errors=errors)
        async with catalog_write(self.repository.session, product.id):
            if "facets" in values:  # before the variants' rows: the order every facet writer locks in
                await lock_spellings(self.repository.session)
            await self._write_update(product, values, updates, added, actor)
            await queue_product_events(self.repository.session, WebhookEvent.PRODUCT_UPDATED, [product.id])
        return await self.get_for_admin(product.id)

    async def _checked_update(
        self,
        product: Product,
        data: ProductWrite | ProductPatch,
        variants: Sequence[VariantUpdate],
        new_variants: Sequence[VariantWrite],
    ) -> tuple[dict[str, Any], list[tuple[Variant, dict[str, Any]]], list[dict[str, Any]], dict[str, str]]:
        """``update_product``'s input cleaned and checked: ``(values, updates, added, field errors)``."""
        errors: dict[str, str] = {}
        values = await self._updated_values(product, data, errors)
        updates = self._variant_updates(product, variants, errors, self.tax_categories)
        added = [
            _clean_variant(msgspec.structs.asdict(v), errors, f"new_variants[{i}].", self.tax_categories)
            for i, v in enumerate(new_variants)
        ]
        groups = values.get("option_groups", list(product.option_groups or []))
        await self._check_updated_variant_set(product, groups, updates, added, errors)
        return values, updates, added, errors

    async def _updated_values(
        self, product: Product, data: ProductWrite | ProductPatch, errors: dict[str, str]
    ) -> dict[str, Any]:
        """``update_product``'s product fields, cleaned and checked (category, free slug) into ``errors``."""
        if isinstance(data, ProductPatch):
            raw = sent(data)
        else:
            raw = msgspec.structs.asdict(data)
            if not (raw.get("slug") or "").strip():
                raw.pop("slug")
        values = _clean_product(raw, errors)
        await self._check_category(values, errors)
        if values.get("slug") and values["slug"] != product.slug and "slug" not in errors:
            await self._check_slug_free(values["slug"], product.id, errors)
        return values

    @staticmethod
    def _variant_updates(
        product: Product,
        variants: Sequence[VariantUpdate],
        errors: dict[str, str],
        tax_categories: Collection[str] | None,
    ) -> list[tuple[Variant, dict[str, Any]]]:
        """``update_product``'s changes to existing variants, each cleaned (errors as ``variants[i].<field>``).

        A stock field equal to the level the admin saw is dropped: a sale since the page was loaded
        must not block saving the rest.
        """
        by_id = {v.id: v for v in product.variants}
        updates: list[tuple[Variant, dict[str, Any]]] = []
        seen_ids: set[int] = set()
        for index, update in enumerate(variants):
            prefix = f"variants[{index}]."
            variant = by_id.get(update.id)
            if variant is None or update.id in seen_ids:
                errors[prefix + "id"] = "This is not a variant of this product."
                continue
            seen_ids.add(update.id)
            fields = sent(update)
            fields.pop("id")
            seen = fields.pop("stock_seen", None)
            clean = _clean_variant(fields, errors, prefix, tax_categories, partial=True)
            if "stock" in clean:
                clean["stock_seen"] = variant.stock if seen is None else seen
                if clean["stock"] == clean["stock_seen"]:
                    del clean["stock"], clean["stock_seen"]
            updates.append((variant, clean))
        return updates

    async def _check_updated_variant_set(
        self,
        product: Product,
        groups: list[str],
        updates: list[tuple[Variant, dict[str, Any]]],
        added: list[dict[str, Any]],
        errors: dict[str, str],
    ) -> None:
        """The variant set as it will be (existing ones with their changes, then the new ones) follows the
        rules (``webshop.catalog.rules``) and its new SKUs are free; problems go into ``errors``."""
        changed = {variant.id: clean for variant, clean in updates}
        final = [
            {
                "sku": changed.get(v.id, {}).get("sku", v.sku),
                "option_values": changed.get(v.id, {}).get("option_values", list(v.option_values or [])),
            }
            for v in product.variants
        ] + added
        index_of = {v.id: i for i, (v, _c) in enumerate(updates)}
        prefixes = [
            f"variants[{index_of[v.id]}]." if v.id in index_of else f"sku {v.sku}: " for v in product.variants
        ] + [f"new_variants[{i}]." for i in range(len(added))]
        if "option_groups" not in errors:
            _check_variant_set(groups, final, errors, prefixes, group_key="option_groups")
        skus_to_check = [(f"variants[{index_of[v.id]}].", c.get("sku")) for v, c in updates if "sku" in c]
        skus_to_check += [(f"new_variants[{i}].", r.get("sku")) for i, r in enumerate(added)]
        await self._check_skus_free(skus_to_check, product.id, errors)

    async def _write_update(
        self,
        product: Product,
        values: dict[str, Any],
        updates: list[tuple[Variant, dict[str, Any]]],
        added: list[dict[str, Any]],
        actor: User | None,
    ) -> None:
        """Write a checked update (in ``update_product``'s ``catalog_write``): variants (stock through
        ``set_stock``), the product's fields and facets, new variants, and their audit events.

        Raises:
            StockChanged: a variant's stock is no longer what the admin saw (the write rolls back).
        """
        session = self.repository.session
        facets_before = facet_dict(product)
        before = _product_snapshot(product, facets_before)
        for variant, clean in updates:
            if "stock" in clean:
                await self._set_stock(variant, clean.pop("stock_seen"), clean.pop("stock"), actor=actor)
            self._apply_variant(variant, clean, self.audit, actor)
        # Variant rows before the product row: the order checkout locks them in (its variants,
        # then their products' summaries), so the two cannot deadlock on PostgreSQL.
        await session.flush()
        facets = values.pop("facets", None)
        if facets is not None:
            # ``update_product`` took the facet writers' lock before the variants' rows (``lock_spellings``).
            spellings = await stored_spellings(session, facets, except_product_id=product.id)
            facets = spellings.mapping(facets)
        for key, value in values.items():
            setattr(product, key, value)
        if facets is not None and facets != facets_before:
            _replace_facets(product, facets)
        after = _product_snapshot(product, facets if facets is not None else facets_before)
        if changes := diff(before, after):
            summary = "Edited the product."
            self.audit.record(actor, "product", product.id, "update", summary=summary, changes=changes)
        await session.flush()
        position = max((v.position for v in product.variants), default=-1) + 1
        for offset, row in enumerate(added):
            await self._insert_variant(product, row, position + offset, self.audit, actor)

    async def soft_delete(self, product_id: int, *, actor: User | None) -> Product:
        """Hide a product from the shop and the API for good, keeping it for past orders; committed.

        Sets ``deleted_at``; shop pages and ``/api/products`` stop showing it (``visible_products``),
        order lines keep their copies and links. Deleting a deleted product changes nothing.

        Raises:
            NotFound: no such product.
        """
        product = await self.get_for_admin(product_id, actor=actor)
        if product.deleted_at is None:
            async with catalog_write(self.repository.session, product.id):
                product.deleted_at = datetime.now(UTC)
                summary = f"Deleted “{product.name}” (hidden from the shop)."
                self.audit.record(actor, "product", product.id, "delete", summary=summary)
                await queue_product_events(self.repository.session, WebhookEvent.PRODUCT_DELETED, [product.id])
        return await self.get_for_admin(product_id)

    async def restore(self, product_id: int, *, actor: User | None) -> Product:
        """Bring a soft-deleted product back into the shop (if ``is_active``); committed.

        Raises:
            NotFound: no such product.
        """
        product = await self.get_for_admin(product_id, actor=actor)
        if product.deleted_at is not None:
            async with catalog_write(self.repository.session, product.id):
                product.deleted_at = None
                self.audit.record(actor, "product", product.id, "restore", summary=f"Restored “{product.name}”.")
                await queue_product_events(self.repository.session, WebhookEvent.PRODUCT_UPDATED, [product.id])
        return await self.get_for_admin(product_id)

    # admin helpers

    async def _check_category(self, values: dict[str, Any], errors: dict[str, str]) -> None:
        category_id = values.get("category_id")
        if (
            category_id is not None
            and "category_id" not in errors
            and await self.repository.session.get(Category, category_id) is None
        ):
            errors["category_id"] = "Choose an existing category."

    async def _check_slug_free(self, slug: str, product_id: int | None, errors: dict[str, str]) -> None:
        owner = await self.repository.session.scalar(select(Product.id).where(Product.slug == slug))
        if owner is not None and owner != product_id:
            errors["slug"] = f"The slug “{slug}” is already used by another product (deleted ones count too)."

    async def _free_slug(self, base: str) -> str:
        base = base[:190].strip("-") or "product"
        taken = set(
            await self.repository.session.scalars(
                select(Product.slug).where(or_(Product.slug == base, Product.slug.like(f"{base}-%")))
            )
        )
        return free_slug([base], taken, limit=190, fallback="product")
