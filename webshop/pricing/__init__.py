"""Pure pricing core: rounding, tax per line (net or gross prices), shipping rates, promotions.

No database, no I/O, no web framework: frozen dataclasses and functions over integers. Money is an
``int`` of minor units (cents) with the currency code passed alongside where text leaves the package;
rates are basis points (``2000`` = 20 %); weights are grams. No floats anywhere.

Modules:
    rounding    the shop's one rounding rule (half away from zero) and largest-remainder allocation
    tax         a line's net/tax/gross in net or gross price mode, an order's totals and tax by rate
    shipping    flat, weight-band and subtotal-band shipping rates
    promotions  whether a promotion applies to a cart, how much it takes off, which ones combine
    codes       promotion codes as typed (normalised) and why a promotion does not apply, in words
"""
