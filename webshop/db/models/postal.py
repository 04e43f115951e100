"""A postal address's field limits, in one place: the columns of the address book (``Address``), of an
order's shipping address (``Order.ship_*``) and of a shop's address (``Shop.address_*``), the checkout's
check (``webshop.checkout.addresses.AddressInput.cleaned``) and the API's constraints
(``webshop.checkout.schemas``, ``webshop.shops.schemas``) all read them here. Lengths are in characters.
"""

RECIPIENT = 120
"""The recipient's name."""
STREET_LINE = 200
"""Each of the two street address lines."""
CITY = 120
POSTAL_CODE = 20
COUNTRY = 2
"""An ISO 3166-1 alpha-2 code."""
