"""Which shops an admin page shows to its user (issue 16): ``ShopScope`` and ``admin_scope``.

Platform admins see every shop's rows, exactly as before shops existed. A shop's owners and staff see
their shops' rows only; a member of several shops may narrow a page to one of them with the "Shop"
select (a GET parameter), and a value outside their shops is ignored (they see all of theirs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from webshop.shops.service import ShopAccess, ShopService
from webshop.text import whole_number_text


@dataclass(frozen=True)
class ShopScope:
    """The shops one user's admin page shows.

    Attributes:
        access: What the user may run (``ShopService.access``).
        shop_ids: The filter for the services' lists: ``None`` for every shop (a platform admin), else
            the chosen shop or all of the member's shops.
        choices: ``[(shop_id, name)]`` for the switcher: the member's shops when they run several, else empty.
        chosen: The shop picked in the switcher (one of ``choices``), or ``None``.
    """

    access: ShopAccess
    shop_ids: frozenset[int] | None
    choices: list[tuple[int, str]] = field(default_factory=list)
    chosen: int | None = None

    @property
    def everything(self) -> bool:
        """True for a platform admin (no shop filter at all)."""
        return self.access.everything

    @property
    def query(self) -> dict[str, str]:
        """The switcher's value as query parameters (``{"shop": "3"}``), for links that keep it."""
        return {"shop": str(self.chosen)} if self.chosen is not None else {}


def shop_choice(value: str | int | None) -> int | None:
    """The ``shop`` query or form value as a shop id, or ``None`` when empty or not a number."""
    return whole_number_text(str(value or ""), max_digits=17)


async def admin_scope(shops: ShopService, user: Any, wanted: str | int | None = None) -> ShopScope:
    """The shops ``user``'s admin pages show, narrowed to ``wanted`` when it is one of their shops.

    Args:
        shops: The request's shop service.
        user: The signed-in user (an admin or a shop member; the guard let them in).
        wanted: The switcher's value (``?shop=``); ignored for admins, and ignored when it is not one
            of the member's shops (a forged or stale value shows all of their shops, never another's).

    Returns:
        The ``ShopScope`` for the services' list filters and the switcher.
    """
    access = await shops.access(user)
    if access.everything:
        return ShopScope(access, None)
    mine = frozenset(access.roles)
    named = await shops.names(sorted(mine))
    choices = sorted(((shop_id, shop.name) for shop_id, shop in named.items()), key=lambda c: (c[1].lower(), c[0]))
    chosen = shop_choice(wanted)
    if chosen not in mine:
        chosen = None
    return ShopScope(
        access,
        frozenset({chosen}) if chosen is not None else mine,
        choices if len(choices) > 1 else [],
        chosen if len(choices) > 1 else None,
    )


__all__ = ["ShopScope", "admin_scope", "shop_choice"]
