"""``ShopService``: shops and their members, and who may run which shop (``ShopAccess``).

The rules (issue 16), enforced here once for the pages and the API:

- platform admins (``User.is_admin``) do everything: create, edit, suspend, restore and delete
  shops, and add or remove any member;
- a shop's owners edit its profile and logo and manage its staff (not its owners);
- owners and staff run the shop's products, stock and orders (checked by those services through
  ``ShopAccess``);
- a shop the user may not run is "not found" to them (404, not 403), unless it is public;
- suspending a shop (or deleting it, softly) takes its products off the storefront and the API at
  once (``Product.shop_active``); past orders keep their lines. The default shop cannot be suspended or deleted.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.audit.service import Audited, diff
from webshop.catalog.summaries import catalog_changed
from webshop.config import ShopSettings
from webshop.db.folding import fold, folded
from webshop.db.models import Product, Shop, ShopMember, ShopRole, User
from webshop.db.repository import repository_for
from webshop.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from webshop.media import MAX_UPLOAD_BYTES, ImageTooLarge, MediaFolder, new_image_key, remove_image_files, store_image
from webshop.shops.profile import ShopProfiles
from webshop.shops.schemas import MemberWrite, ShopPatch, ShopWrite
from webshop.validation import validated

_DONE = {"suspend": "Suspended", "restore": "Restored", "delete": "Deleted"}
"""The audit summary's past-tense verb of each status change of a shop."""


def roles_managed_by(actor: User | None) -> tuple[str, ...]:
    """The shop roles ``actor`` may give, change and take away in a shop they own: every role for a
    platform admin (or the command line, ``None``), ``staff`` for a shop's owner. ``ShopService`` refuses
    the rest; the shop page offers only these."""
    if actor is None or actor.is_admin:
        return tuple(role.value for role in ShopRole)
    return (ShopRole.STAFF.value,)


@dataclass(frozen=True)
class MembershipChange:
    """What ``ShopService.add_member`` did: the membership, its user and their role before.

    Attributes:
        member: the membership row as it is now.
        user: its user.
        previous_role: ``"owner"`` or ``"staff"`` before the call; None when the user was not a member.
    """

    member: ShopMember
    user: User
    previous_role: str | None

    @property
    def changed(self) -> bool:
        """False when the user already had this role (nothing was written)."""
        return self.previous_role != self.member.role


@dataclass(frozen=True)
class ShopAccess:
    """Which shops a user may run: all of them (a platform admin) or those they are a member of.

    Attributes:
        everything: True for a platform admin.
        roles: ``{shop_id: "owner" | "staff"}`` of the user's memberships (in trading and suspended shops).
    """

    everything: bool = False
    roles: Mapping[int, str] = field(default_factory=dict)

    @property
    def runs_a_shop(self) -> bool:
        """True when the user may use the management pages at all (an admin or a member of a shop)."""
        return self.everything or bool(self.roles)

    @property
    def shop_ids(self) -> frozenset[int] | None:
        """The shops' ids, or ``None`` for every shop (an admin): a filter for lists."""
        return None if self.everything else frozenset(self.roles)

    def runs(self, shop_id: int | None) -> bool:
        """True when the user may run shop ``shop_id`` (its products, stock and order lines)."""
        return self.everything or (shop_id is not None and shop_id in self.roles)

    def owns(self, shop_id: int) -> bool:
        """True when the user may edit shop ``shop_id``'s profile and staff (an admin or an owner)."""
        return self.everything or self.roles.get(shop_id) == ShopRole.OWNER.value

    def check_runs(self, shop_id: int | None, missing: str = "There is no such product.") -> None:
        """Raise ``NotFound`` (``missing``) unless the user runs ``shop_id``: another shop's objects are
        not found to them (404, not 403), so ids of other shops' products and orders leak nothing."""
        if not self.runs(shop_id):
            raise NotFound(missing)


EVERYTHING = ShopAccess(everything=True)
"""The access of the command line and of code that acts for the platform (imports, tools)."""


class ShopService(ShopProfiles, Audited, MediaFolder, SQLAlchemyAsyncRepositoryService[Shop]):
    """Shops, their members, and who may run which shop."""

    repository_type = repository_for(Shop)
    media_kind = "logos"

    # --- who may do what --------------------------------------------------------------------------

    async def access(self, user: Any | None) -> ShopAccess:
        """What ``user`` (a ``User`` or the session's snapshot, or ``None``) may run; one query.

        An inactive user runs nothing.
        """
        if user is None or not getattr(user, "is_active", True):
            return ShopAccess()
        if user.is_admin:
            return EVERYTHING
        rows = await self.repository.session.execute(
            select(ShopMember.shop_id, ShopMember.role)
            .join(Shop, Shop.id == ShopMember.shop_id)
            .where(ShopMember.user_id == user.id, Shop.deleted_at.is_(None))
        )
        return ShopAccess(roles={shop_id: role for shop_id, role in rows})

    async def memberships_of(self, user_id: int) -> list[tuple[Shop, str]]:
        """The shops ``user_id`` is a member of (deleted ones aside), with their role there (``owner``,
        ``staff``), by shop name: a user's admin page says who runs which shop."""
        rows = await self.repository.session.execute(
            select(Shop, ShopMember.role)
            .join(ShopMember, ShopMember.shop_id == Shop.id)
            .where(ShopMember.user_id == user_id, Shop.deleted_at.is_(None))
            .order_by(Shop.name)
        )
        return [(shop, str(role)) for shop, role in rows]

    async def shop_for_new_product(self, user: Any | None, shop_id: int | None) -> int:
        """The shop a new product of ``user`` goes to (``POST /api/products``, the admin form, imports).

        A member of exactly one shop may leave ``shop_id`` out; a member of several must give it; an
        admin may name any shop, and the default shop is taken when they leave it out.

        Raises:
            ValidationFailed: a member of several shops gave none, or the shop does not exist.
            PermissionDenied: ``shop_id`` is a shop the user is not a member of (a forged id).
        """
        access = EVERYTHING if user is None else await self.access(user)
        if shop_id is None:
            if access.everything:
                return (await self.default_shop()).id
            if len(access.roles) == 1:
                return next(iter(access.roles))
            if not access.roles:
                raise PermissionDenied("Only a shop's members can add products to it.")
            message = "Choose the shop this product belongs to."
            raise ValidationFailed(message, field_errors={"shop_id": message})
        if not access.runs(shop_id):
            raise PermissionDenied("You can only add products to a shop you are a member of.")
        shop = await self.get_one_or_none(id=shop_id)
        if shop is None or shop.deleted_at is not None:
            raise ValidationFailed("There is no such shop.", field_errors={"shop_id": "There is no such shop."})
        return shop.id

    # --- reads ---------------------------------------------------------------------------------

    async def default_shop(self) -> Shop:
        """The default shop (made by the migration from ``WEBSHOP_SHOP_NAME``)."""
        return await self.get_one(is_default=True)

    async def trading_count(self) -> int:
        """How many shops trade (active, not deleted): shop chrome appears from two on."""
        count = await self.repository.session.scalar(
            select(func.count()).select_from(Shop).where(Shop.is_active.is_(True), Shop.deleted_at.is_(None))
        )
        return int(count or 0)

    async def list_public(
        self, *, q: str = "", limit: int = 50, offset: int = 0, after: tuple[str, int] | None = None
    ) -> tuple[list[Shop], int]:
        """Trading shops by name, then id (``/shops``, ``GET /api/shops``), optionally those whose name has
        ``q``; ``offset`` skips rows (the pages), ``after`` (a name and an id) starts after that place in
        this order (the API's keyset cursor: a shop added, renamed or removed meanwhile neither repeats nor
        skips another). The count leaves ``after`` aside."""
        condition = [Shop.is_active.is_(True), Shop.deleted_at.is_(None), *self._matching(q)]
        if after is not None:
            name, shop_id = after
            condition.append(or_(Shop.name > name, and_(Shop.name == name, Shop.id > shop_id)))
        return await self._page(condition, limit, offset)

    async def get_public(self, *, shop_id: int | None = None, slug: str | None = None) -> Shop:
        """A trading shop by id or slug.

        Raises:
            NotFound: no such shop, or it is suspended or deleted.
        """
        shop = await self.get_one_or_none(**({"id": shop_id} if shop_id is not None else {"slug": slug}))
        if shop is None or not shop.trading:
            raise NotFound("There is no such shop.")
        return shop

    async def list_for(
        self, user: Any, *, q: str = "", status: str = "", limit: int = 50, offset: int = 0
    ) -> tuple[list[Shop], int]:
        """The shops ``user`` may manage (all for an admin), by name; ``status`` is ``active``,
        ``suspended``, ``deleted`` or empty (all but deleted)."""
        access = await self.access(user)
        condition: list[Any] = list(self._matching(q))
        if access.shop_ids is not None:
            condition.append(Shop.id.in_(access.shop_ids or {0}))
        if status == "deleted":
            condition.append(Shop.deleted_at.is_not(None))
        else:
            condition.append(Shop.deleted_at.is_(None))
            if status in ("active", "suspended"):
                condition.append(Shop.is_active.is_(status == "active"))
        return await self._page(condition, limit, offset)

    async def get_for(self, user: Any, shop_id: int) -> Shop:
        """Shop ``shop_id`` as ``user`` manages it (an admin sees deleted shops too).

        Raises:
            NotFound: no such shop, or ``user`` is not an admin or one of its members.
        """
        access = await self.access(user)
        shop = await self.get_one_or_none(id=shop_id)
        if shop is None or not access.runs(shop.id) or (shop.deleted_at is not None and not access.everything):
            raise NotFound("There is no such shop.")
        return shop

    async def names(self, shop_ids: Sequence[int]) -> dict[int, Shop]:
        """``{id: shop}`` of ``shop_ids`` (for labels: "Sold by ...")."""
        if not shop_ids:
            return {}
        # Not repository.list: advanced-alchemy deprecates it (a warning, an error under the tests).
        shops = await self.repository.session.scalars(select(Shop).where(Shop.id.in_(set(shop_ids))))
        return {shop.id: shop for shop in shops}

    def _matching(self, q: str) -> list[Any]:
        text = " ".join(q.split())[:100]
        if not text:
            return []
        needle = fold(text)
        return [or_(folded(Shop.name).contains(needle, autoescape=True), Shop.slug.contains(needle, autoescape=True))]

    async def _page(self, condition: list[Any], limit: int, offset: int) -> tuple[list[Shop], int]:
        session = self.repository.session
        total = await session.scalar(select(func.count()).select_from(Shop).where(*condition))
        shops = await session.scalars(
            select(Shop).where(*condition).order_by(Shop.name, Shop.id).limit(limit).offset(offset)
        )
        return list(shops), int(total or 0)

    # --- writes --------------------------------------------------------------------------------

    async def create_shop(self, actor: User | None, data: ShopWrite | Mapping[str, Any]) -> Shop:
        """Create a shop (platform admins only; ``actor`` ``None`` is the command line); committed.

        Raises:
            PermissionDenied: ``actor`` is not an admin.
            ValidationFailed: a field is invalid or the slug is taken (``field_errors`` names it).
        """
        self._check_admin(actor)
        values = await self._checked_profile(data, ShopWrite, None)
        shop = Shop(**values, is_active=True, is_default=False)
        # A new trading shop can bring the storefront's shop chrome (the second one): a new catalog version.
        summary = f"Created shop {shop.name}"
        await self._write(shop, actor, "create", summary, changes=diff({}, values), products_changed=True)
        return shop

    async def update_shop(self, actor: User | None, shop_id: int, patch: ShopPatch | Mapping[str, Any]) -> Shop:
        """Change a shop's profile (an admin or one of its owners); committed.

        Raises:
            NotFound: no such shop, or ``actor`` is not one of its members.
            PermissionDenied: ``actor`` is staff, not an owner.
            ValidationFailed: a field is invalid or the slug is taken.
        """
        shop = await self._owned(actor, shop_id)
        values = await self._checked_profile(patch, ShopPatch, shop)
        before = {key: getattr(shop, key) for key in values}
        for key, value in values.items():
            setattr(shop, key, value)
        # Product pages and cards show the shop's name: a new name goes with a new catalog version.
        renamed = before.get("name", shop.name) != shop.name or before.get("slug", shop.slug) != shop.slug
        summary = f"Changed shop {shop.name}"
        await self._write(shop, actor, "update", summary, changes=diff(before, values), products_changed=renamed)
        return shop

    async def suspend(self, actor: User | None, shop_id: int) -> Shop:
        """Suspend a shop (admins): its products leave the storefront and the API; committed.

        Raises:
            NotFound: no such shop, or it is deleted (suspending must not bring it back as suspended: restore it).
            PermissionDenied: ``actor`` is not an admin.
            Conflict: it is the default shop (products without a shop go there: they would all be hidden).
        """
        return await self._set_trading(actor, shop_id, active=False, deleted=False, action="suspend")

    async def restore(self, actor: User | None, shop_id: int) -> Shop:
        """Bring a suspended or deleted shop back (admins): its visible products return; committed."""
        return await self._set_trading(actor, shop_id, active=True, deleted=False, action="restore")

    async def delete_shop(self, actor: User | None, shop_id: int) -> Shop:
        """Soft-delete a shop (admins): like suspending, and it leaves the admin's list; committed.

        Raises:
            Conflict: it is the default shop (products without a shop go there).
        """
        return await self._set_trading(actor, shop_id, active=False, deleted=True, action="delete")

    async def _set_trading(self, actor: User | None, shop_id: int, *, active: bool, deleted: bool, action: str) -> Shop:
        self._check_admin(actor)
        shop = await self.get_one_or_none(id=shop_id)
        if shop is None or (action == "suspend" and shop.deleted_at is not None):
            raise NotFound("There is no such shop.")
        if not active and shop.is_default:
            done = "deleted" if deleted else "suspended"
            raise Conflict(f"The default shop cannot be {done}: products without a shop go there.")
        # Back from deletion, its name may be another shop's now.
        if not deleted and shop.deleted_at is not None and (clash := await self._name_clash(shop.name, shop.id)):
            raise Conflict(f"Another shop is called “{clash}” now: rename one of the two before restoring this one.")
        before = {"is_active": shop.is_active, "deleted": shop.deleted_at is not None}
        if before == {"is_active": active, "deleted": deleted}:
            return shop  # already so: nothing to write, record or refresh (a repeated click or API call)
        shop.is_active = active
        shop.deleted_at = datetime.now(UTC) if deleted else None
        after = {"is_active": active, "deleted": deleted}
        await self.repository.session.execute(
            update(Product).where(Product.shop_id == shop.id).values(shop_active=shop.trading)
        )
        summary = f"{_DONE[action]} shop {shop.name}"
        await self._write(shop, actor, action, summary, changes=diff(before, after), products_changed=True)
        return shop

    # --- members -------------------------------------------------------------------------------

    async def members(self, actor: User | None, shop_id: int) -> list[tuple[ShopMember, User]]:
        """A shop's members with their users, owners first (an admin or a member of the shop).

        Raises:
            NotFound: no such shop, or ``actor`` is not one of its members.
        """
        await self._run(actor, shop_id)
        rows = await self.repository.session.execute(
            select(ShopMember, User)
            .join(User, User.id == ShopMember.user_id)
            .where(ShopMember.shop_id == shop_id)
            .order_by(ShopMember.role, User.email)
        )
        return [(member, user) for member, user in rows]

    async def add_member(
        self, actor: User | None, shop_id: int, data: MemberWrite | Mapping[str, Any]
    ) -> MembershipChange:
        """Add a user to a shop, or change their role there; committed (nothing is written when the
        role is the one they have).

        Admins add owners and staff; a shop's owners add staff only.

        Returns:
            The membership, its user and the role they had before (None: they were not a member).

        Raises:
            NotFound: no such shop, or ``actor`` is not one of its members.
            PermissionDenied: ``actor`` is staff, or an owner adding an owner.
            ValidationFailed: no such active user, or an unknown role.
        """
        member_data = msgspec.convert(validated(data, MemberWrite, subject="the shop's details"), MemberWrite)
        shop = await self._owned(actor, shop_id)
        if member_data.role not in roles_managed_by(actor):
            raise PermissionDenied("Only a platform admin can make someone an owner of a shop.")
        session = self.repository.session
        user = await session.get(User, member_data.user_id)
        if user is None or not user.is_active:
            message = "There is no active user with this id."
            raise ValidationFailed(message, field_errors={"user_id": message})
        member: ShopMember | None = await session.scalar(
            select(ShopMember).where(ShopMember.shop_id == shop.id, ShopMember.user_id == user.id)
        )
        if member is not None and member.role not in roles_managed_by(actor):
            raise PermissionDenied("Only a platform admin can change an owner's role.")
        before = member.role if member else None
        if member is not None and before == member_data.role:
            return MembershipChange(member, user, before)  # nothing changes: no event
        if member is None:
            member = ShopMember(shop_id=shop.id, user_id=user.id, role=member_data.role)
            session.add(member)
        member.role = member_data.role
        self.audit.record(
            actor,
            "shop",
            shop.id,
            "member",
            summary=f"{user.email} is now {member.role} of {shop.name}" + (f" (was {before})" if before else ""),
            changes={"member": [None if before is None else f"{user.email}:{before}", f"{user.email}:{member.role}"]},
        )
        try:
            await session.flush()
        except IntegrityError as exc:  # the same user added at the same moment by someone else
            await session.rollback()
            raise Conflict("This user was just added to the shop; reload and try again.") from exc
        await session.commit()
        return MembershipChange(member, user, before)

    async def remove_member(self, actor: User | None, shop_id: int, user_id: int) -> None:
        """Take a user out of a shop; committed. Admins remove anyone, owners remove staff.

        Raises:
            NotFound: no such shop or member, or ``actor`` is not one of its members.
            PermissionDenied: ``actor`` is staff, or an owner removing an owner.
        """
        shop = await self._owned(actor, shop_id)
        session = self.repository.session
        member = await session.scalar(
            select(ShopMember).where(ShopMember.shop_id == shop.id, ShopMember.user_id == user_id)
        )
        if member is None:
            raise NotFound("This user is not a member of the shop.")
        if member.role not in roles_managed_by(actor):
            raise PermissionDenied("Only a platform admin can remove an owner of a shop.")
        email = await session.scalar(select(User.email).where(User.id == user_id))
        await session.delete(member)
        self.audit.record(
            actor,
            "shop",
            shop.id,
            "member",
            summary=f"{email} is no longer {member.role} of {shop.name}",
            changes={"member": [f"{email}:{member.role}", None]},
        )
        await session.commit()

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _check_admin(actor: User | None) -> None:
        if actor is not None and not actor.is_admin:
            raise PermissionDenied("Only a platform admin can do this.")

    async def _run(self, actor: User | None, shop_id: int) -> Shop:
        """The shop, if ``actor`` runs it (``None``: the command line)."""
        if actor is None:
            shop = await self.get_one_or_none(id=shop_id)
            if shop is None:
                raise NotFound("There is no such shop.")
            return shop
        return await self.get_for(actor, shop_id)

    async def _owned(self, actor: User | None, shop_id: int) -> Shop:
        shop = await self._run(actor, shop_id)
        if actor is not None and not (await self.access(actor)).owns(shop.id):
            raise PermissionDenied("Only the shop's owners can change this.")
        return shop

    async def _write(
        self,
        shop: Shop,
        actor: User | None,
        action: str,
        summary: str,
        *,
        changes: dict[str, Any],
        products_changed: bool = False,
    ) -> None:
        """Flush ``shop``, record the audit event and commit; with ``products_changed`` the shop's
        products' summaries and search documents are refreshed and the catalog version moves, in the
        same transaction."""
        session = self.repository.session
        session.add(shop)
        try:
            await session.flush()
        except IntegrityError as exc:
            await session.rollback()
            message = "Another shop just took this slug; please try again."
            raise ValidationFailed(message, field_errors={"slug": message}) from exc
        self.audit.record(actor, "shop", shop.id, action, summary=summary, changes=changes)
        if products_changed:
            await catalog_changed(session, await session.scalars(select(Product.id).where(Product.shop_id == shop.id)))
        await session.commit()

    # --- the logo ------------------------------------------------------------------------------
    # Kept at the end of the class: the constructor and the logo verbs came with the admin's shop pages.

    def __init__(self, session: AsyncSession, *, shop: ShopSettings | None = None, **repo_kwargs: Any) -> None:
        """A service on ``session``; ``shop`` (given by the app's provider) says where logos are stored
        (``shop.media_dir``), as for product photos."""
        super().__init__(session=session, **repo_kwargs)
        self.shop = shop

    async def set_logo(self, actor: User | None, shop_id: int, data: bytes, filename: str = "") -> Shop:
        """Store an uploaded logo (verified, metadata stripped, WebP sizes) as the shop's; committed.

        The same rules as ``update_shop``: an admin or one of the shop's owners. The bytes go through
        ``webshop.media.store_image`` in a worker thread (JPEG, PNG or WebP only, decompression-bomb
        guard) under a random key; the previous logo's files are deleted once the change is committed,
        and the new files are deleted again if the commit fails.

        Args:
            actor: The admin or owner (``None``: the command line).
            shop_id: The shop.
            data: The file's bytes (at most ``MAX_UPLOAD_BYTES``).
            filename: The uploaded file's name, for the audit trail only.

        Returns:
            The shop, with ``logo_key`` and ``logo_ext`` set.

        Raises:
            NotFound: no such shop, or ``actor`` is not one of its members.
            PermissionDenied: ``actor`` is staff, not an owner.
            ImageTooLarge: more than ``MAX_UPLOAD_BYTES`` (413; ``field_errors["image"]``).
            ImageRejected: not an image, not JPEG/PNG/WebP, truncated, damaged or too many pixels.
        """
        shop = await self._owned(actor, shop_id)  # who may comes first: staff get 403 whatever they send
        if len(data) > MAX_UPLOAD_BYTES:
            raise ImageTooLarge()
        stored = await anyio.to_thread.run_sync(
            functools.partial(store_image, data, self.media_dir, key=new_image_key())
        )
        old_key = shop.logo_key
        shop.logo_key, shop.logo_ext = stored.key, stored.ext
        name = " ".join("".join(ch for ch in filename if ch.isprintable()).split())[:120]
        summary = f"Changed the logo of {shop.name}" + (f" ({name})" if name else "")
        try:
            await self._write(shop, actor, "logo", summary, changes={"logo": [old_key, stored.key]})
        except BaseException:
            remove_image_files(self.media_dir, stored.key)
            raise
        if old_key:
            remove_image_files(self.media_dir, old_key)
        return shop

    async def remove_logo(self, actor: User | None, shop_id: int) -> Shop:
        """Take the shop's logo away (an admin or one of its owners); committed, then its files are deleted.

        A shop without a logo is left as it is (nothing recorded).

        Raises:
            NotFound: no such shop, or ``actor`` is not one of its members.
            PermissionDenied: ``actor`` is staff, not an owner.
        """
        shop = await self._owned(actor, shop_id)
        old_key = shop.logo_key
        if not old_key:
            return shop
        shop.logo_key, shop.logo_ext = None, ""
        await self._write(shop, actor, "logo", f"Removed the logo of {shop.name}", changes={"logo": [old_key, None]})
        remove_image_files(self.media_dir, old_key)
        return shop

    # --- the JSON API (issue 16) -----------------------------------------------------------------

    async def get_live_for(self, user: Any, shop_id: int) -> Shop:
        """Shop ``shop_id`` as ``user`` manages it through the API, where a deleted shop is gone for
        everyone, admins included, but for ``POST /api/shops/{id}/restore`` and the managed list (the admin
        pages use ``get_for``).

        Raises:
            NotFound: no such shop, it is deleted, or ``user`` is not an admin or one of its members.
        """
        shop = await self.get_for(user, shop_id)
        if shop.deleted_at is not None:
            raise NotFound("There is no such shop.")
        return shop
