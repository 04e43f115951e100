"""The shopper's optional note for the seller, given at checkout: the one rule every way in shares.

The checkout page's textarea and the API's ``customer_note`` both reach ``CheckoutService.place_order``,
which keeps the note on the order through ``clean_customer_note``. The limit is ``ORDER_NOTE`` (the
column's length, ``webshop.db.models.orders``): the API schema states it as ``maxLength``, the
textarea as ``maxlength``, and this rule counts the note as it will be stored.

Why the count is taken after line breaks are normalised: browsers count a textarea's line break as
one character for ``maxlength`` but send it as CR LF (HTML's form submission), so a note the page
allowed could otherwise be refused.
"""

from __future__ import annotations

import re
import unicodedata

from webshop.db.models.orders import ORDER_NOTE
from webshop.errors import ValidationFailed

NOTE_FIELD = "customer_note"
"""The note's field name: in the checkout form, the API body, the order JSON and ``field_errors``."""

_LINE_BREAK = re.compile(r"\r\n?")


def clean_customer_note(text: str | None) -> str:
    """The note as stored: line breaks as LF, trimmed, at most ``ORDER_NOTE`` characters.

    Args:
        text: What the shopper typed (any line breaks: LF, CR LF, CR); ``None`` or blank for no note.

    Returns:
        The note to keep on the order (``""`` for none). It is plain text: every page and e-mail that
        shows it escapes it (Jinja's autoescape) and shows its line breaks with CSS, never as markup.

    Raises:
        ValidationFailed: ``field_errors["customer_note"]`` says why: a control character other than
            line feed and tab (``webshop.text``: they corrupt logs and e-mails, and PostgreSQL refuses
            NUL), or more than ``ORDER_NOTE`` characters.
    """
    note = _LINE_BREAK.sub("\n", text or "").strip()
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in note):
        message = "Remove the control characters (such as NUL or ESC) from your note."
        raise ValidationFailed("Please correct your note for the seller.", field_errors={NOTE_FIELD: message})
    if len(note) > ORDER_NOTE:
        message = f"Use at most {ORDER_NOTE} characters (this note has {len(note)})."
        raise ValidationFailed(
            f"Your note for the seller is too long: use at most {ORDER_NOTE} characters.",
            field_errors={NOTE_FIELD: message},
        )
    return note
