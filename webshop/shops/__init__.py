"""Shops: several sellers in one webshop (issue 16). ``ShopService`` owns every rule about shops and
their members; ``ShopAccess`` says which shops a user may run, for the catalog, stock and order services."""
