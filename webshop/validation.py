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
        ValidationFailed: fields break their constraints ("Check the name of the promotion: at most 120
            characters."); ``field_errors`` names each by its form field (``address.country``: ``country``)
            with its message in words (``webshop.text.readable_message``: "At most 120 characters."); its
            ``extra["limits"]`` is the set of those fields, for a page with sentences of its own for them.
    """
    raw = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else data
    if errors := json_body_errors(raw, shape):
        fields = {_form_field(error["key"]): error["message"] for error in errors}
        name, first = next(iter(fields.items()))
        what = subject if name == "form" else f"the {name.replace('_', ' ')} of {subject}"
        message = f"Check {what}: {first[:1].lower()}{first[1:]}"
        raise ValidationFailed(message, field_errors=fields, limits=frozenset(fields))
    return {k: v for k, v in raw.items() if v is not msgspec.UNSET}


def _form_field(key: str) -> str:
    """The form field a body error's key names (``address.country``: ``country``); ``form`` for the body."""
    name = key.split(".")[-1].split("[")[0]
    return "form" if name in ("", "data") else name
