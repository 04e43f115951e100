"""Schema pieces every API resource shares (msgspec Structs), and the strict decoding of JSON bodies."""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Protocol, TypeVar

import msgspec
from litestar.enums import RequestEncodingType
from litestar.exceptions import ClientException, HTTPException, SerializationException, ValidationException
from litestar.params import BodyKwarg, HeaderParameter, PathParameter, QueryParameter

from webshop.errors import ValidationFailed
from webshop.text import readable_message, storable
from webshop.web import AnyRequest

if TYPE_CHECKING:
    pass

S = TypeVar("S", bound=msgspec.Struct)


class _Row(Protocol):
    """A row with an id (a model instance)."""

    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=_Row)

BIGINT_MAX = 2**63 - 1
"""The largest value of the database's 64-bit integer columns; bigger numbers are a 400, not a database error."""

INT_MAX = 2**31 - 1
"""The largest value of the database's 32-bit integer columns (prices in minor units)."""

ID_MAX = 2**53 - 1
"""The largest id a path or query parameter takes: an integer every JSON client can hold exactly
(RFC 7493 §2.2), and one OpenAPI can state exactly (Litestar writes parameter bounds as floats, and
``2**63 - 1`` as a float is ``2**63``, which would make an out-of-range id look valid)."""

PathId = Annotated[int, PathParameter(ge=1, le=ID_MAX)]
"""A row id in a path."""

ID_CURSOR_PATTERN = r"^[0-9]{1,15}\Z"
IdCursor = Annotated[
    str | None,
    QueryParameter(
        pattern=ID_CURSOR_PATTERN,
        schema_extra={"pattern": "^[0-9]{1,15}$"},  # the same rule in JSON Schema's dialect (no \Z)
        description="``next_cursor`` of the previous page",
    ),
]
"""The cursor of a short list (shops, users, webhooks, deliveries): opaque to clients, a number the
previous page's ``next_cursor`` gave: the id of the row that page ended with (a keyset cursor, so rows
added or removed meanwhile neither repeat nor skip one: see ``keyset_page``)."""
ProductCursor = Annotated[
    str | None,
    QueryParameter(
        max_length=500,
        pattern=r"^[A-Za-z0-9_-]*\Z",
        schema_extra={"pattern": "^[A-Za-z0-9_-]*$"},
        description="``next_cursor`` of the previous page",
    ),
]
"""The cursor of a catalog page: opaque to clients, base64url text without padding (RFC 4648 §5) that the
previous page's ``next_cursor`` gave (``webshop.catalog.cursor``); empty, the first page (as before it had a
pattern). Outside that alphabet it is a 400, as any malformed query parameter; well-formed but not one the
API issued for this sort, a 422."""
PageLimit = Annotated[int, QueryParameter(ge=1, le=100)]
"""How many rows a page of a cursor-paged list holds."""


def keyset_page(
    rows: Sequence[R], limit: int, cursor_of: Callable[[R], str] = lambda row: str(row.id)
) -> tuple[list[R], str | None]:
    """One page of ``rows`` read with ``limit + 1`` (``limit`` rows, and one more if there are more) in
    the list's order, and its ``next_cursor``: ``cursor_of`` its last row (the next page starts after it;
    by default the row's id), ``None`` on the last page."""
    page = list(rows[:limit])
    return page, cursor_of(page[-1]) if len(rows) > limit and page else None


NameCursor = Annotated[
    str | None,
    QueryParameter(
        pattern=r"^[A-Za-z0-9_-]{1,800}\Z",
        schema_extra={"pattern": "^[A-Za-z0-9_-]{1,800}$"},
        description="``next_cursor`` of the previous page",
    ),
]
"""The cursor of a list in name order (shops): opaque to clients; the name and id of the row the previous
page ended with (``name_cursor``), so a row renamed or added meanwhile neither repeats nor skips one."""


def name_cursor(name: str, row_id: int) -> str:
    """The ``NameCursor`` after the row named ``name`` with ``row_id``: URL-safe base64 of ``[name, id]``."""
    return base64.urlsafe_b64encode(json.dumps([name, row_id]).encode()).decode().rstrip("=")


def read_name_cursor(cursor: str) -> tuple[str, int]:
    """``(name, id)`` from a ``NameCursor``.

    Raises:
        ValidationFailed: it is not one this API issued (422, ``cursor``).
    """
    problem = ValidationFailed("The cursor is not valid for this query.", field_errors={"cursor": "Invalid cursor."})
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise problem from exc
    match value:
        case [str() as name, int() as row_id] if (
            storable(name) and not isinstance(row_id, bool) and 0 < row_id <= ID_MAX
        ):
            return name, row_id
    raise problem


IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Unique per attempt (an order placed, a refund meant): repeating it replays the first answer.",
    ),
]
OptionalIdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=255,
        required=False,
        description="Optional, unique per change meant: repeating it replays the first answer instead of "
        "changing again (a retry after a lost answer counts the goods once).",
    ),
]
"""The ``Idempotency-Key`` request header of the writes a client may safely retry (the IETF draft
"The Idempotency-Key HTTP Header Field"): the same key gets the first answer again, never a second write."""


class Money(msgspec.Struct, frozen=True):
    """An amount of money: ``amount`` in integer minor units (cents) of ``currency`` (ISO 4217)."""

    amount: int
    currency: str


def from_row(shape: type[S], row: object, /, **given: Any) -> S:
    """``shape`` filled from ``row``: each field is ``given[name]`` when given, else ``row``'s attribute of
    the same name (a database row of the model the shape shows). One list of fields per shape, its own.

    Raises:
        AttributeError: ``row`` has no attribute for a field that is not given.
    """
    return shape(**{name: given[name] if name in given else getattr(row, name) for name in shape.__struct_fields__})


def money(amount: int, currency: str) -> Money:
    """``Money`` from minor units and a currency code."""
    return Money(amount=amount, currency=currency)


# --- Strict JSON bodies -----------------------------------------------------------------------------
# Litestar converts a handler's arguments with msgspec's lax rules (``strict=False``), which suit query
# strings and forms, where every value is text: ``"5"`` is 5. A JSON body has types of its own, and the
# lax rules would take ``0`` and ``"false"`` for a boolean and ``"12"`` for an integer, all of which the
# published schema (rightly) calls invalid. So every JSON body is checked with the strict rules first.

_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_NAMED_FIELD = re.compile(r"field `(?P<name>[^`]+)`")


def _integral_floats_as_ints(value: Any) -> Any:
    """``value`` with every float that is a whole number (``2.0``, ``1e3``) as an ``int``.

    JSON has one number type: ``2.0`` is the integer 2 to JSON Schema (and so to the OpenAPI schema),
    while msgspec's strict rules refuse a float for an ``int`` field.
    """
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral_floats_as_ints(item) for item in value]
    if isinstance(value, dict):
        return {key: _integral_floats_as_ints(item) for key, item in value.items()}
    return value


def _error(exc: msgspec.ValidationError, prefix: str = "") -> dict[str, str]:
    """Litestar's ``{key, message, source}`` for a msgspec error; ``key`` is the field's path."""
    match = _AT.match(str(exc))
    message, path = (match["message"], match["path"] or "") if match else (str(exc), "")
    message = readable_message(message)  # a sentence, not the regular expression (the schema has it)
    key = (prefix + path).lstrip(".")
    if not key and (named := _NAMED_FIELD.search(message)):
        key = named["name"]  # a missing or unknown field, reported on the object holding it
    return {"key": key or "data", "message": message, "source": "body"}


def _struct_type(annotation: Any) -> type[msgspec.Struct] | None:
    """The Struct a body annotation decodes into (``X`` or ``X | None``), if any."""
    info = msgspec.inspect.type_info(annotation)
    if isinstance(info, msgspec.inspect.UnionType):
        arms = [arm for arm in info.types if not isinstance(arm, msgspec.inspect.NoneType)]
        info = arms[0] if len(arms) == 1 else info
    return info.cls if isinstance(info, msgspec.inspect.StructType) else None


def json_body_errors(value: Any, annotation: Any) -> list[dict[str, str]]:
    """What is wrong with the decoded JSON ``value`` as a body of type ``annotation``, under msgspec's
    strict rules (no text for numbers, no numbers for booleans); ``[]`` when nothing is.

    Every field of a Struct body is checked, so each bad one is named at once (msgspec itself stops at
    the first), the fields of a nested Struct (``address.country``) too; a missing or unknown field is
    named too.

    Args:
        value: The JSON body as decoded (``dict``/``list``/``str``/numbers...).
        annotation: The handler's ``data`` type.

    Returns:
        Litestar's validation details: ``[{"key": "variants[0].price", "message": ..., "source": "body"}]``.
    """
    value = _integral_floats_as_ints(value)
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError as exc:
        whole = _error(exc)
    else:
        return []
    struct = _struct_type(annotation)
    if struct is None or not isinstance(value, dict):
        return [whole]
    errors = []
    fields = msgspec.structs.fields(struct)
    for field in fields:
        if field.encode_name in value:
            try:
                msgspec.convert(value[field.encode_name], field.type, strict=True)
            except msgspec.ValidationError as exc:
                nested = _struct_type(field.type) is not None and isinstance(value[field.encode_name], dict)
                inner = json_body_errors(value[field.encode_name], field.type) if nested else []
                errors += [{**error, "key": f"{field.encode_name}.{error['key']}"} for error in inner] or [
                    _error(exc, prefix=field.encode_name)
                ]
        elif field.required:
            message = f"Object missing required field `{field.encode_name}`"
            errors.append({"key": field.encode_name, "message": message, "source": "body"})
    if struct.__struct_config__.forbid_unknown_fields:
        known = {field.encode_name for field in fields}
        errors += [
            {"key": str(name), "message": f"Object contains unknown field `{name}`", "source": "body"}
            for name in value
            if name not in known
        ]
    return errors or [whole]


class _Object(dict[str, Any]):
    """A decoded JSON object that remembers the first name it was given twice (``repeated``)."""

    repeated: str | None = None


def _object(pairs: list[tuple[str, Any]]) -> _Object:
    decoded = _Object(pairs)
    if len(decoded) != len(pairs):
        seen: set[str] = set()
        for name, _value in pairs:
            if name in seen:
                decoded.repeated = name
                break
            seen.add(name)
    return decoded


def _repeated_path(value: Any, path: str = "") -> str | None:
    """The dotted path (``shipping_address.country``; ``lines[1].sku``) of the first repeated name in ``value``."""
    if isinstance(value, _Object):
        if value.repeated is not None:
            return f"{path}.{value.repeated}".lstrip(".")
        items: Any = ((f"{path}.{name}", item) for name, item in value.items())
    elif isinstance(value, list):
        items = ((f"{path}[{index}]", item) for index, item in enumerate(value))
    else:
        return None
    return next((found for where, item in items if (found := _repeated_path(item, where)) is not None), None)


def repeated_key(body: bytes) -> str | None:
    """The path of the first name a JSON object in ``body`` holds twice (``{"sku": "A", "sku": "B"}``: ``sku``;
    nested: ``shipping_address.country``), or ``None``.

    RFC 8259 section 4 says a name SHOULD be unique and that parsers then differ: msgspec keeps the last
    value, another reader of the same body (a proxy, a log, a webhook consumer) may keep the first. So a
    body that repeats a name is refused rather than read one way here and another way elsewhere (OWASP
    REST Security Cheat Sheet, "Input validation"). ``body`` is valid JSON already (msgspec read it).
    """
    try:
        return _repeated_path(json.loads(body, object_pairs_hook=_object))
    except (ValueError, RecursionError):  # what Python's json reads otherwise, or nests deeper than it goes
        return None


_BODY_NAMES = {
    "application/json": "JSON",
    "multipart/form-data": "a file upload",
    "application/x-www-form-urlencoded": "a form",
}


def _unsupported(request: AnyRequest, sent: str, takes: str) -> HTTPException:
    """The 415 for a body sent as ``sent`` to a route that takes ``takes`` (RFC 9110 §15.5.16), naming it in
    ``Accept-Post`` or ``Accept-Patch`` (RFC 5789 §3.1)."""
    return HTTPException(
        status_code=415,
        detail=f"Send the body as {_BODY_NAMES.get(takes, takes)} (Content-Type: {takes}), not {sent}.",
        headers={"Accept-Patch" if request.method == "PATCH" else "Accept-Post": takes},
    )


async def strict_json_body(request: AnyRequest) -> None:
    """A ``before_request`` hook: refuse a JSON body that msgspec's strict rules refuse (400), and a body
    whose ``Content-Type`` says it is something else (415, RFC 9110 §15.5.16, with ``Accept-Post`` or
    ``Accept-Patch`` naming JSON; a body without a ``Content-Type`` is read as JSON). A route that takes a
    form (``POST /api/auth/token``, RFC 6749 §4.3.2) or a file refuses another ``Content-Type`` the same
    way, naming its own (before, a JSON body got a 400 saying the form's fields were missing).

    Runs after authentication and guards, before Litestar decodes the handler's arguments; routes that
    take no body are left alone.

    Raises:
        ClientException: the body is not JSON, or there is none where the route needs one.
        HTTPException: 415, the ``Content-Type`` is not JSON's.
        ValidationException: naming every field that does not fit (problem+json with ``errors``).
    """
    data = request.route_handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return
    kwarg = data.kwarg_definition
    if isinstance(kwarg, BodyKwarg) and kwarg.media_type not in {RequestEncodingType.JSON, None}:
        takes = RequestEncodingType(kwarg.media_type).value
        sent = request.content_type[0].lower()
        if sent and sent != takes:  # the header alone: a file's body is not read here
            raise _unsupported(request, sent, takes)
        return
    if not await request.body():
        if data.has_default or data.is_optional:
            return  # no body: Litestar applies the default
        raise ClientException("This request needs a JSON body (Content-Type: application/json).")
    media_type = request.content_type[0].lower()
    if media_type and media_type != "application/json" and not media_type.endswith("+json"):
        raise _unsupported(request, media_type, "application/json")
    try:
        value = await request.json()
    except SerializationException as exc:  # not JSON: the 400 Litestar gives when it decodes the body
        raise ClientException(str(exc)) from exc
    if key := repeated_key(await request.body()):
        message = "This field is given more than once: send it once (RFC 8259 section 4)."
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=[{"key": key, "message": message, "source": "body"}],
        )
    if errors := json_body_errors(value, data.annotation):
        raise ValidationException(
            detail=f"Validation failed for {request.method} {request.url.path}",
            extra=errors,
        )
