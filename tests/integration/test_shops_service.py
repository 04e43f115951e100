"""Issue 16: the shop rules in ``ShopService``, once for the pages and the API (both engines).

Who may create, edit, suspend and delete shops and manage their members; which shop a new product
goes to; and that a suspended or deleted shop's products leave the storefront at once.
"""

from __future__ import annotations

import pytest
from advanced_alchemy.exceptions import NotFoundError
from sqlalchemy import select

from tests.factories import make_user, seed_catalog
from webshop.catalog.products import ProductService
from webshop.catalog.query import CatalogQuery
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import AuditEvent, Product, ShopMember, User, UserRole
from webshop.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from webshop.shops.schemas import MemberWrite, ShopPatch, ShopWrite
from webshop.shops.service import ShopService


async def _user(alchemy: ShopAlchemyConfig, email: str, role: UserRole = UserRole.CUSTOMER) -> User:
    user_id = await make_user(alchemy, email, role)
    async with alchemy.get_session() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def test_the_migration_made_one_default_shop_named_by_the_setting(alchemy: ShopAlchemyConfig) -> None:
    async with alchemy.get_session() as session:
        shops = ShopService(session=session)
        default = await shops.default_shop()
        assert (default.name, default.slug, default.is_default, default.trading) == ("Webshop", "webshop", True, True)
        assert await shops.trading_count() == 1


async def test_only_admins_create_shops_and_slugs_are_made_and_unique(alchemy: ShopAlchemyConfig) -> None:
    admin = await _user(alchemy, "admin@example.com", UserRole.ADMIN)
    customer = await _user(alchemy, "ann@example.com")
    async with write_session(alchemy) as session:
        shops = ShopService(session=session)
        with pytest.raises(PermissionDenied):
            await shops.create_shop(customer, ShopWrite(name="Ann's Kitchen"))
        first = await shops.create_shop(admin, ShopWrite(name="Ann's Kitchen", contact_email="ann@example.com"))
        second = await shops.create_shop(admin, {"name": "Ann's Kitchen!"})  # another name, the same slug's
        assert (first.slug, second.slug) == ("ann-s-kitchen", "ann-s-kitchen-2")
        with pytest.raises(ValidationFailed) as taken:
            await shops.create_shop(admin, ShopWrite(name="Other", slug="ann-s-kitchen"))
        assert "slug" in taken.value.field_errors
        with pytest.raises(ValidationFailed):
            await shops.create_shop(admin, {"name": "   "})
        with pytest.raises(ValidationFailed) as bad_email:
            await shops.create_shop(admin, {"name": "Bo", "contact_email": "not an address"})
        assert "contact_email" in bad_email.value.field_errors


async def test_owners_edit_their_shop_and_manage_staff_staff_and_strangers_cannot(alchemy: ShopAlchemyConfig) -> None:
    admin = await _user(alchemy, "admin@example.com", UserRole.ADMIN)
    owner = await _user(alchemy, "owner@example.com")
    staff = await _user(alchemy, "staff@example.com")
    stranger = await _user(alchemy, "stranger@example.com")
    async with write_session(alchemy) as session:
        shops = ShopService(session=session)
        shop = await shops.create_shop(admin, ShopWrite(name="Ann's Kitchen"))
        await shops.add_member(admin, shop.id, MemberWrite(user_id=owner.id, role="owner"))
        added = await shops.add_member(owner, shop.id, MemberWrite(user_id=staff.id, role="staff"))
        assert (added.user.email, added.member.role, added.previous_role, added.changed) == (
            "staff@example.com",
            "staff",
            None,
            True,
        )
        again = await shops.add_member(owner, shop.id, MemberWrite(user_id=staff.id, role="staff"))
        assert (again.previous_role, again.changed) == ("staff", False)
        with pytest.raises(PermissionDenied):  # owners add staff, not owners
            await shops.add_member(owner, shop.id, MemberWrite(user_id=stranger.id, role="owner"))
        with pytest.raises(PermissionDenied):
            await shops.add_member(staff, shop.id, MemberWrite(user_id=stranger.id))
        with pytest.raises(NotFound):  # another shop is not found to a stranger
            await shops.add_member(stranger, shop.id, MemberWrite(user_id=stranger.id))

        await shops.update_shop(owner, shop.id, ShopPatch(description="Pots and pans"))
        with pytest.raises(PermissionDenied):
            await shops.update_shop(staff, shop.id, ShopPatch(name="Mine now"))
        with pytest.raises(NotFound):
            await shops.update_shop(stranger, shop.id, ShopPatch(name="Mine now"))

        members = await shops.members(owner, shop.id)
        assert [(m.role, u.email) for m, u in members] == [
            ("owner", "owner@example.com"),
            ("staff", "staff@example.com"),
        ]
        access = await shops.access(staff)
        assert access.runs(shop.id) and not access.owns(shop.id) and access.runs_a_shop
        assert not (await shops.access(stranger)).runs(shop.id)
        with pytest.raises(PermissionDenied):
            await shops.remove_member(owner, shop.id, owner.id)  # an owner leaves through an admin
        await shops.remove_member(owner, shop.id, staff.id)
        assert not (await shops.access(staff)).runs(shop.id)
        # The shop's history names who was removed, as it names who was added (not "User 6 left").
        summaries = await session.scalars(
            select(AuditEvent.summary).where(AuditEvent.action == "member").order_by(AuditEvent.id)
        )
        assert list(summaries)[-2:] == [
            "staff@example.com is now staff of Ann's Kitchen",
            "staff@example.com is no longer staff of Ann's Kitchen",
        ]
        refreshed = await shops.get_for(owner, shop.id)
        assert refreshed.description == "Pots and pans"


async def test_new_products_go_to_the_members_shop_or_the_named_one(alchemy: ShopAlchemyConfig) -> None:
    admin = await _user(alchemy, "admin@example.com", UserRole.ADMIN)
    one = await _user(alchemy, "one@example.com")
    two = await _user(alchemy, "two@example.com")
    customer = await _user(alchemy, "customer@example.com")
    async with write_session(alchemy) as session:
        shops = ShopService(session=session)
        a = await shops.create_shop(admin, ShopWrite(name="A"))
        b = await shops.create_shop(admin, ShopWrite(name="B"))
        await shops.add_member(admin, a.id, MemberWrite(user_id=one.id, role="owner"))
        await shops.add_member(admin, a.id, MemberWrite(user_id=two.id))
        await shops.add_member(admin, b.id, MemberWrite(user_id=two.id))
        default = await shops.default_shop()

        assert await shops.shop_for_new_product(admin, None) == default.id
        assert await shops.shop_for_new_product(admin, b.id) == b.id
        assert await shops.shop_for_new_product(one, None) == a.id
        with pytest.raises(PermissionDenied):  # a forged shop_id
            await shops.shop_for_new_product(one, b.id)
        with pytest.raises(ValidationFailed):  # a member of several shops must say which
            await shops.shop_for_new_product(two, None)
        assert await shops.shop_for_new_product(two, b.id) == b.id
        with pytest.raises(PermissionDenied):
            await shops.shop_for_new_product(customer, None)


async def test_suspending_or_deleting_a_shop_takes_its_products_off_the_storefront(alchemy: ShopAlchemyConfig) -> None:
    admin = await _user(alchemy, "admin@example.com", UserRole.ADMIN)
    await seed_catalog(alchemy)
    async with write_session(alchemy) as session:
        shops = ShopService(session=session)
        shop = await shops.create_shop(admin, ShopWrite(name="Second"))
        moved = await session.scalar(Product.__table__.select().with_only_columns(Product.id).limit(1))
        product = await session.get(Product, moved)
        assert product is not None
        product.shop_id = shop.id
        await session.commit()
        products = ProductService(session=session)
        everything = (await products.browse(CatalogQuery())).total

        await shops.suspend(admin, shop.id)
        assert (await products.browse(CatalogQuery())).total == everything - 1
        with pytest.raises(NotFound):
            await shops.get_public(shop_id=shop.id)
        with pytest.raises(NotFoundError):
            await products.get_visible(product.id)

        await shops.restore(admin, shop.id)
        assert (await products.browse(CatalogQuery())).total == everything
        assert (await shops.get_public(slug="second")).id == shop.id

        await shops.delete_shop(admin, shop.id)
        assert (await products.browse(CatalogQuery())).total == everything - 1
        assert [s.slug for s in (await shops.list_for(admin))[0]] == ["webshop"]
        with pytest.raises(Conflict):
            await shops.delete_shop(admin, (await shops.default_shop()).id)
        with pytest.raises(PermissionDenied):
            await shops.suspend(await _user(alchemy, "x@example.com"), shop.id)
        assert await session.scalar(ShopMember.__table__.select().with_only_columns(ShopMember.id)) is None


async def test_an_empty_slug_on_update_keeps_the_name_s_slug_for_the_same_shop(alchemy: ShopAlchemyConfig) -> None:
    admin = await _user(alchemy, "admin@example.com", UserRole.ADMIN)
    async with write_session(alchemy) as session:
        shops = ShopService(session=session)
        shop = await shops.create_shop(admin, ShopWrite(name="Ann's Kitchen"))
        again = await shops.update_shop(admin, shop.id, {"slug": ""})
        assert again.slug == "ann-s-kitchen"


async def test_a_shop_cannot_take_a_name_that_reads_as_another_shops(alchemy: ShopAlchemyConfig) -> None:
    """QA: an owner renamed their shop "Webshop" (or "Webshop" with a zero-width space), so "Sold by
    Webshop" could be either."""
    async with write_session(alchemy) as session:
        service = ShopService(session=session)
        other = await service.create_shop(None, ShopWrite(name="Bob's Bikes"))
        for name in ("Webshop", "WEBSHOP", "Ｗｅｂｓｈｏｐ", "Web\u200dshop", "  webshop  "):
            with pytest.raises(ValidationFailed) as refused:
                await service.update_shop(None, other.id, ShopPatch(name=name))
            assert refused.value.field_errors == {
                "name": "Another shop is called “Webshop”: choose a name shoppers can tell apart from it."
            }, name
        with pytest.raises(ValidationFailed):
            await service.create_shop(None, ShopWrite(name="bob's  bikes"))
        kept = await service.update_shop(None, other.id, ShopPatch(name="BOB'S BIKES"))  # its own name: fine
        assert kept.name == "BOB'S BIKES"
        await service.delete_shop(None, other.id)
        again = await service.create_shop(None, ShopWrite(name="Bob's Bikes"))  # a deleted shop's name is free
        assert again.name == "Bob's Bikes"
        with pytest.raises(Conflict) as restoring:  # ... until the deleted one comes back (review)
            await service.restore(None, other.id)
        assert restoring.value.detail == (
            "Another shop is called “Bob's Bikes” now: rename one of the two before restoring this one."
        )
        # A form sends the name with every change: its own name (any case) never locks the owner out.
        changed = await service.update_shop(None, again.id, ShopPatch(name="bob's bikes", contact_phone="+1 555 0101"))
        assert changed.contact_phone == "+1 555 0101"
