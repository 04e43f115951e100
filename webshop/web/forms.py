"""Reading a posted form into its Struct, so that a field the Struct refuses shows the form again.

Litestar decodes a handler's ``data`` before the handler runs, and a refusal there is a bare error
page. A form handler instead takes the posted fields as they came (``FormFields``) and calls
``read_form`` inside its usual ``try``: a field that does not fit its type (a control character, see
``webshop.text``) raises ``InvalidForm``, a ``ValidationFailed`` with a message for each such field,
which the handler's error path turns into the form again (422) with the messages beside the fields.
``InvalidForm.form`` keeps the fields that did fit, to fill the form in again; ``form_again`` is that
error path's answer.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from webshop.errors import DomainError, ValidationFailed
from webshop.text import BIDI_MESSAGE, CONTROL_MESSAGE, has_bidi_control

FormFields = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
"""A form handler's ``data``: the posted fields as sent (a repeated field is a list)."""

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
"""The body marker of a form decoded straight into its Struct by Litestar, ``data: Annotated[SomeForm, Form]``
(every field with a default); a field that does not fit its type is Litestar's 400, not the form again."""

FORM_MESSAGE = "Please correct the marked fields."

FormT = TypeVar("FormT", bound=msgspec.Struct)


def form_message(error: DomainError | None) -> str:
    """The message above a refused form: ``error``'s, or ``FORM_MESSAGE`` when that only says again what
    a field's message says beside the field (one sentence shown twice reads as two problems); ``""``
    without an error."""
    if error is None:
        return ""
    return FORM_MESSAGE if error.detail in error.field_errors.values() else error.detail


class InvalidForm(ValidationFailed, Generic[FormT]):
    """A posted form with fields that do not fit (422); ``form`` holds the others, the bad ones at their defaults."""

    def __init__(self, form: FormT, field_errors: dict[str, str], detail: str = FORM_MESSAGE) -> None:
        """``detail``: the form's message (``FORM_MESSAGE`` unless a refusal named no field)."""
        super().__init__(detail, field_errors=field_errors)
        self.form = form


def _message(value: Any) -> str:
    if not isinstance(value, str):
        return "Enter this field once, as text."
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        return CONTROL_MESSAGE
    if has_bidi_control(value):
        return BIDI_MESSAGE
    return "This value is not valid here."


def read_form(form_type: type[FormT], fields: Mapping[str, Any]) -> FormT:
    """The posted ``fields`` decoded into ``form_type`` (fields it does not declare are ignored).

    Args:
        form_type: The form's Struct, every field with a default; its text fields are ``webshop.text`` types.
        fields: The posted fields (``FormFields``).

    Returns:
        The form, every field checked against its type.

    Raises:
        InvalidForm: ``field_errors`` with a message for every field that does not fit.
    """
    try:
        return msgspec.convert(dict(fields), form_type, strict=False)
    except msgspec.ValidationError:
        pass
    good: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in msgspec.structs.fields(form_type):
        if field.encode_name not in fields:
            continue
        value = fields[field.encode_name]
        try:
            good[field.encode_name] = msgspec.convert(value, field.type, strict=False)
        except msgspec.ValidationError:
            errors[field.encode_name] = _message(value)
    raise InvalidForm(msgspec.convert(good, form_type), errors)


class FormProblems(Generic[FormT]):
    """Every problem of a posted form in one round: the fields ``read_form`` refuses, then what each
    later check (``with problems.check():``) says of the rest, a field keeping its first message (the
    form's own, before a rule that saw a stand-in for it).

    Attributes:
        form: The posted form (a refused field at its default, as ``InvalidForm.form``).
        errors: ``{field: message}`` so far.
        failed: True once anything was refused (a check may refuse without naming a field).
        detail: The first refusal's message that named no field, else ``FORM_MESSAGE``.
    """

    def __init__(self, form_type: type[FormT], fields: Mapping[str, Any]) -> None:
        self.failed, self.detail = False, FORM_MESSAGE
        try:
            self.form: FormT = read_form(form_type, fields)
            self.errors: dict[str, str] = {}
        except InvalidForm as exc:
            self.form, self.errors, self.failed = exc.form, dict(exc.field_errors), True

    @classmethod
    def of(cls, form: FormT) -> FormProblems[FormT]:
        """The problems of a form already read (``read_form`` found none): what its checks will say."""
        problems = cls.__new__(cls)
        problems.form, problems.errors, problems.failed, problems.detail = form, {}, False, FORM_MESSAGE
        return problems

    @contextmanager
    def check(self) -> Iterator[None]:
        """Run the block as one check: a ``ValidationFailed`` it raises is kept (its field messages
        join ``errors``; a message naming no field becomes ``detail``), not raised; the block stops there."""
        try:
            yield
        except ValidationFailed as exc:
            if not exc.field_errors and self.detail == FORM_MESSAGE:
                self.detail = exc.detail
            self.failed = True
            for key, message in exc.field_errors.items():
                self.errors.setdefault(key, message)

    def raise_any(self) -> None:
        """Refuse the form when anything was refused.

        Raises:
            InvalidForm: a field or a check was refused, with ``form``, every message and ``detail``.
        """
        if self.failed:
            raise InvalidForm(self.form, self.errors, self.detail)


def with_lists(fields: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """``fields`` with each of ``names`` as a list: a multiple select or checkbox group sends a field once
    (a string), several times (a list) or not at all (left out of the post)."""
    found = dict(fields)
    for name in names:
        value = found.get(name)
        found[name] = [] if value is None else [value] if isinstance(value, str) else list(value)
    return found


def form_again(
    template: str,
    error: DomainError,
    context: dict[str, Any],
    *,
    status_code: int = 422,
    message_key: str = "message",
    headers: dict[str, str] | None = None,
) -> Template:
    """The form's page again after a refused post: ``context``, plus ``errors`` (``{field: message}``, shown
    beside the fields) and the error's message under ``message_key``.

    Args:
        template: The form's page.
        error: Why the post was refused (``ValidationFailed``, ``InvalidForm``, a domain error).
        context: What the page shows besides the messages (the values to fill in again).
        status_code: 422 (the form needs correcting) unless the handler says otherwise.
        message_key: The context key of the message, for pages with more than one form.
        headers: Extra response headers (``Cache-Control`` on the pages of e-mailed links).
    """
    return Template(
        template,
        context={**context, "errors": error.field_errors, message_key: error.detail},
        status_code=status_code,
        headers=headers,
    )
