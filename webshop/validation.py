"""A service's check of its input Struct against the Struct's own constraints.

msgspec applies a Struct's ``Meta`` limits (lengths, ranges, patterns) when it decodes JSON, not when code
builds the Struct: the pages' form readers build service inputs directly. So a service verb that must hold
its limits whoever calls it checks its input here, with the rules the API's bodies pass
(``webshop.api.schemas.json_body_errors``: strict types, each bad field named at once).
"""

from __future__ import annotations

from typing import Any

import msgspec

from webshop.api.schemas import json_body_errors
from webshop.errors import ValidationFailed


def validated(data: Any, shape: type[Any], *, subject: str = "the details") -> dict[str, Any]:
    """``data`` (a Struct or a dict of builtins) checked against ``shape``'s constraints, as builtins
    (fields left unset omitted).

    Raises:
        ValidationFailed: fields break their constraints ("Check ``subject``: ..."); ``field_errors`` names
            each by its form field (``address.country``: ``country``), and each message ends with msgspec's
            path, `` - at `$.address.country```, which a page may replace with a sentence.
    """
    raw = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else data
    if errors := json_body_errors(raw, shape):
        fields = {_form_field(error["key"]): f"{error['message']} - at `$.{error['key']}`" for error in errors}
        first = next(iter(fields.values()))
        raise ValidationFailed(f"Check {subject}: {first}", field_errors=fields)
    return {k: v for k, v in raw.items() if v is not msgspec.UNSET}


def _form_field(key: str) -> str:
    """The form field a body error's key names (``address.country``: ``country``); ``form`` for the body."""
    name = key.split(".")[-1].split("[")[0]
    return "form" if name in ("", "data") else name
