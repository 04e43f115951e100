"""The text every input shape accepts: one rule against control characters, shared by all of them.

Every text field of every input Struct (the JSON API's bodies in ``webshop/*/schemas.py`` and the
pages' form Structs) is one of the types below, or narrows one of them with bounds of its own. A
control character is then refused where the input is decoded, the same way everywhere: ``400``
problem+json naming the field for the API (``webshop.api.schemas.strict_json_body``), the form shown
again with a message for a page (``webshop.web.forms.read_form``). The published OpenAPI schema states
the same patterns, so clients and schema-driven tools know them.

Why: PostgreSQL cannot store NUL in text (SQLSTATE 22021), and the other control characters (ESC,
BEL, backspace, DEL, the C1 range) are never part of a name, an address or a SKU, but can corrupt
logs, terminals, CSV exports and e-mails. Tab, line feed and carriage return are allowed in
multi-line text only (browsers send a textarea's line breaks as CR LF).

The patterns are read by two regex dialects: Python's ``re`` (msgspec checks a value with
``re.search``) and ECMA-262 (JSON Schema, hence OpenAPI clients). So they avoid what the two read
differently: ``\\s`` (``SPACE`` lists the white space instead), and ``$``, which in Python also matches
before a final line feed; they end with ``\\Z`` (the end of the text), which the OpenAPI schema spells
``$`` (ECMA's end of input without the ``m`` flag), see ``openapi_pattern``.
"""

from __future__ import annotations

import ast
import contextlib
import re
import unicodedata
from typing import Annotated, Any

import idna
import msgspec
from litestar.params import ParameterKwarg, QueryParameter

BIDI_CONTROL = r"\u202a-\u202e\u2066-\u2069"
"""The bidirectional embeddings, overrides and isolates (LRE RLE PDF LRO RLO, LRI RLI FSI PDI): they reorder
the text around them as displayed, so ``"\u202egnp.exe"`` reads as ``exe.png`` ("Trojan Source",
CVE-2021-42574; Unicode TR #36 section 2.1). Names and addresses read right to left without them (the
marks LRM and RLM stay allowed), so every text refuses them, as it refuses control characters."""
NONCHARACTER = r"\ufdd0-\ufdef\ufffe\uffff"
"""The noncharacters of the Basic Multilingual Plane (U+FDD0..U+FDEF, U+FFFE, U+FFFF): "for internal
use", never interchanged (The Unicode Standard, section 23.7); a text refuses them as it refuses controls."""
CONTROL = rf"\x00-\x1f\x7f-\x9f{BIDI_CONTROL}{NONCHARACTER}"
"""Control characters (Unicode category Cc: C0, DEL and C1), ``BIDI_CONTROL`` and ``NONCHARACTER``, as a
character class's ranges."""
CONTROL_BUT_LINE_BREAKS = rf"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{BIDI_CONTROL}{NONCHARACTER}"
"""``CONTROL`` without tab, line feed and carriage return: what multi-line text refuses."""
SPACE = r" \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""White space that is not a control character: what ``str.strip()`` and ``str.split()`` remove besides
controls, so "visible" here means what the services' trimming leaves."""
MARKS = r"\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe00-\ufe0f\ufe20-\ufe2f"
"""The general combining marks (the Combining Diacritical Marks blocks, with their Extended, Supplement,
for Symbols and Half Marks blocks) and the variation selectors: they change the character before them and
show nothing of their own. The marks of particular scripts (Hebrew points, Arabic harakat, Thai vowels)
are not listed: a text of those alone still counts as visible."""
INVISIBLE = rf"\u00ad\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2060-\u2064\u3164\ufeff\uffa0{MARKS}"
"""Characters of no width or no ink (soft hyphen, the Arabic letter mark, the Hangul and Khmer fillers,
zero-width space, joiners, direction marks, word joiner, invisible operators, the byte order mark, and
``MARKS``): allowed inside a text (Persian and emoji need the joiners, "é" may be typed as e and a mark),
but no text is "visible" by them alone (a name of one zero-width space, or of three accents, shows as
nothing a reader can tell)."""

LINE_PATTERN = rf"^[^{CONTROL}]*\Z"
"""One line of text without control characters (empty allowed)."""
VISIBLE_LINE_PATTERN = rf"^[{SPACE}{INVISIBLE}]*[^{CONTROL}{SPACE}{INVISIBLE}][^{CONTROL}]*\Z"
"""One line with at least one character that is not white space, and no control characters."""
LINES_PATTERN = rf"^[^{CONTROL_BUT_LINE_BREAKS}]*\Z"
"""Multi-line text: tab and line breaks allowed, no other control characters (empty allowed)."""
EMAIL_PATTERN = rf"^[^@{CONTROL}{SPACE}]{{1,64}}@[^@{CONTROL}{SPACE}]+\.[^@{CONTROL}{SPACE}]+\Z"
"""Something@domain.tld without white space or control characters (``webshop.accounts.service.EMAIL_RE``)."""

Line = Annotated[str, msgspec.Meta(pattern=LINE_PATTERN)]
"""A single-line text field (names, passwords, tokens): no control characters."""
VisibleLine = Annotated[str, msgspec.Meta(pattern=VISIBLE_LINE_PATTERN)]
"""A single-line text field that must not be blank (the services trim it and need something left)."""
Lines = Annotated[str, msgspec.Meta(pattern=LINES_PATTERN)]
"""A multi-line text field (a description): tab, line feed and carriage return allowed."""

CONTROL_MESSAGE = "Remove the control characters (such as NUL or ESC) from this field."
"""What a page says about a field that holds a control character."""
BIDI_MESSAGE = "Remove the text direction controls (such as RIGHT-TO-LEFT OVERRIDE) from this field."
"""What a page says about a field that holds one of ``BIDI_CONTROL``."""
_BIDI = re.compile(f"[{BIDI_CONTROL}]")

PATTERN_MESSAGES = {
    LINE_PATTERN: "Expected text without control characters (such as NUL or a line break)",
    VISIBLE_LINE_PATTERN: "Expected text with a visible character and without control characters (such as NUL)",
    LINES_PATTERN: "Expected text without control characters other than tab and line breaks (such as NUL)",
    EMAIL_PATTERN: "Expected an e-mail address like name@example.com",
}
"""What the API says about a value that does not match one of these patterns (instead of the pattern)."""


def storable(text: str) -> bool:
    """``text`` can be stored and compared as text by both engines: no NUL (PostgreSQL's ``text`` refuses
    it) and no lone surrogate (``"\\ud800"``, which JSON's ``\\u`` escapes can carry but UTF-8 cannot
    encode, RFC 3629 section 3). For values from outside that no pattern checked (a decoded cursor)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def without_accents(text: str) -> str:
    """``text`` case folded (Unicode) with its accents removed, for matching and sorting as a reader does:
    ``"Crème Brûlée"`` -> ``"creme brulee"``, ``"Québec"`` -> ``"quebec"`` (NFKD, combining marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()


def name_skeleton(text: str) -> str:
    """What a name looks like to a reader, for telling two apart: Unicode NFKC (full-width and other
    compatibility forms become plain letters), case folded, invisible and format characters
    (``INVISIBLE``, category Cf) dropped, white space collapsed: ``"Ｗｅｂshop\u200b"`` and ``"webshop"``
    have the same skeleton. A simplification of Unicode TS #39's confusable skeletons: it does not map
    letters of other scripts that look alike."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    visible = "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")
    return " ".join(visible.split())


def has_bidi_control(text: str) -> bool:
    """True when ``text`` holds one of ``BIDI_CONTROL`` (which every text field refuses)."""
    return _BIDI.search(text) is not None


def openapi_pattern(pattern: str) -> str:
    """``pattern`` as JSON Schema (ECMA-262) reads it: a final ``\\Z`` becomes ``$``.

    Args:
        pattern: A pattern of this module (or any Python pattern that ends with ``\\Z`` for "end of text").

    Returns:
        The same pattern for the OpenAPI schema.
    """
    return pattern[:-2] + "$" if pattern.endswith("\\Z") else pattern


def query_text(**kwargs: Any) -> ParameterKwarg:
    """A ``QueryParameter`` for free text (a search): no control characters, like every text field.

    Litestar writes a parameter's ``pattern`` into the OpenAPI schema as it is; ``schema_extra`` puts
    the ECMA spelling there instead (see ``openapi_pattern``), while the server checks the Python one.

    Args:
        kwargs: Further ``QueryParameter`` arguments (``max_length``, ``description``...).
    """
    return QueryParameter(pattern=LINE_PATTERN, schema_extra={"pattern": openapi_pattern(LINE_PATTERN)}, **kwargs)


def query_texts(**kwargs: Any) -> ParameterKwarg:
    """A ``QueryParameter`` for a repeated free-text value (``?brand=a&brand=b``, typed ``list[Line]``):
    the OpenAPI schema gets the items' pattern (``items`` beside the ``oneOf`` Litestar writes for an
    optional list), so what the server refuses is documented as invalid.

    Args:
        kwargs: Further ``QueryParameter`` arguments (``description``...).
    """
    return QueryParameter(
        schema_extra={"items": {"type": "string", "pattern": openapi_pattern(LINE_PATTERN)}}, **kwargs
    )


def pattern_message(pattern: str) -> str:
    """What is wrong with a text that does not match ``pattern``, for an API client.

    Args:
        pattern: The pattern the text failed (a Python pattern, as msgspec reports it).

    Returns:
        A sentence for this module's patterns; the pattern as the OpenAPI schema states it for others.
    """
    return PATTERN_MESSAGES.get(pattern, f"Expected text matching the pattern {openapi_pattern(pattern)}")


_REGEX_MESSAGE = re.compile(r"^Expected `str` matching regex (?P<pattern>'.*')$", re.DOTALL)


_BOUND_MESSAGE = re.compile(
    r"^Expected `(?P<type>str|int|float|array|object)`(?: of length)? (?P<op><=|>=|<|>) (?P<bound>-?[0-9.e+]+)$"
)
"""msgspec's message for a value outside its ``Meta`` bound: a length (``Expected `str` of length <= 120``)
or a number's range (``Expected `int` >= 0``)."""

_WRONG_TYPE = {
    "Expected `int`, got `str`": "Must be a whole number.",
    "Expected `int`, got `float`": "Must be a whole number.",
}
"""msgspec's type mismatches worded (the rest stay as msgspec says them)."""


def _bound_message(kind: str, op: str, bound: str) -> str:
    """``_BOUND_MESSAGE``'s parts as a sentence: "At most 120 characters.", "Must be 0 or more."."""
    if kind in ("int", "float"):
        return {
            ">=": f"Must be {bound} or more.",
            "<=": f"Must be {bound} or less.",
            ">": f"Must be more than {bound}.",
        }.get(op, f"Must be less than {bound}.")
    noun = "character" if kind == "str" else "item"
    number = int(bound) + (1 if op == ">" else -1 if op == "<" else 0)
    if op in (">=", ">") and number == 1:
        return "Cannot be empty."
    return f"{'At least' if op in ('>=', '>') else 'At most'} {number} {noun}{'' if number == 1 else 's'}."


def readable_message(message: str) -> str:
    """msgspec's message for a value that failed its pattern ("Expected `str` matching regex '^[0-9]+\\Z'")
    as ``pattern_message`` says it, one outside its length or range as a sentence ("At most 120
    characters.", "Must be 0 or more."), a text for a whole number as "Must be a whole number."; any other
    message as it is. For a JSON body's fields, query and path parameters and the pages' forms alike."""
    if failed := _REGEX_MESSAGE.match(message):
        return pattern_message(ast.literal_eval(failed["pattern"]))
    if bound := _BOUND_MESSAGE.match(message):
        return _bound_message(bound["type"], bound["op"], bound["bound"])
    return _WRONG_TYPE.get(message, message)


_WHOLE_NUMBER = re.compile(r"([+-]?)([0-9]+)")


def whole_number_text(text: str, *, max_digits: int = 18, signed: bool = False) -> int | None:
    """``text`` (surrounding white space ignored) as a whole number when it is 1 to ``max_digits`` ASCII
    digits, after a ``+`` or ``-`` if ``signed``; ``None`` otherwise.

    ``str.isdigit()`` and ``int()`` alone are not enough for a form field or a query value: ``int()`` also
    takes ``"１２"`` (full-width digits), ``"1_000"`` and ``" 7 "``, and ``isdigit()`` passes ``"²"``,
    which ``int()`` then refuses with ``ValueError``. The default bound (18 digits) keeps the number within
    a 64-bit row id (``BIGINT``); a caller checks its own range.
    """
    match = _WHOLE_NUMBER.fullmatch(text.strip())
    if match is None or len(match[2]) > max_digits or (match[1] and not signed):
        return None
    return int(match[0])


def ascii_domain(address: str) -> str:
    """``address`` with its domain in ASCII: an internationalised domain name becomes its IDNA "xn--"
    form (IDNA 2008, RFC 5890/5891, with the UTS #46 mapping and no transitional processing, as browsers
    and registries do: ``ann@bücher.example`` -> ``ann@xn--bcher-kva.example``, and ``straße.de`` stays
    ``xn--strae-oqa.de``, not IDNA 2003's ``strasse.de``, someone else's domain). Every mail server takes
    it. The local part stays as it is: one with other than ASCII needs SMTPUTF8 (RFC 6531). An address
    whose domain IDNA cannot encode is returned unchanged (its server will refuse it)."""
    local, at, domain = address.rpartition("@")
    if not at or domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True, transitional=False).decode('ascii')}"
    except idna.IDNAError:
        return address


LATIN_LOOKALIKES = frozenset("авеікјмнорсѕтухһӏԁԛԝαβεικνορτυχϲϳ")
"""Cyrillic and Greek letters that look like Latin ones: a label spelt with these alone (``аррӏе``) passes
for a Latin word (a whole-script confusable, Unicode TS #39 section 4)."""


SCRIPT_MIXES = (frozenset({"CJK", "HIRAGANA", "KATAKANA"}), frozenset({"CJK", "HANGUL"}))
"""Scripts one language writes together (Japanese, Korean), so a label may mix them."""


def _script(character: str) -> str:
    """The script of a letter, from its Unicode name (``LATIN``, ``CYRILLIC``, ``GREEK``, ``CJK``...)."""
    return unicodedata.name(character, "UNKNOWN").split(" ", 1)[0]


def _safe_to_show(label: str) -> bool:
    """True when a decoded domain label can be shown in Unicode without passing for another: its letters
    are of one script (no mixed-script spoof such as a Cyrillic ``а`` in ``pаypal``), and a Cyrillic or
    Greek label has a letter that looks like no Latin one. The rule browsers apply before they show an
    internationalised domain (Chromium's IDN display policy, after Unicode TS #39)."""
    scripts = {_script(c) for c in label if c.isalpha()}
    if len(scripts) > 1 and not any(scripts <= mix for mix in SCRIPT_MIXES):
        return False
    if scripts & {"CYRILLIC", "GREEK"}:
        return any(c.isalpha() and c not in LATIN_LOOKALIKES for c in label)
    return True


def readable_email(address: str) -> str:
    """``address`` as a person reads it: a domain stored in its IDNA ASCII form (``ascii_domain``) shown in
    Unicode again (``ann@xn--bcher-kva.example`` -> ``ann@bücher.example``; RFC 5891 section 5.5, as
    browsers show a domain). Display only: what is stored, compared and sent stays ASCII. An address
    whose domain is plain ASCII or not valid IDNA, or has a label that could pass for another
    (``_safe_to_show``: ``xn--80ak6aa92e.com`` would read as "apple.com"), is returned unchanged."""
    local, at, domain = address.rpartition("@")
    if not at or "xn--" not in domain.lower():
        return address
    try:
        readable = idna.decode(domain)
    except idna.IDNAError:
        return address
    if not all(_safe_to_show(label) for label in readable.split(".")):
        return address
    return f"{local}@{readable}"


def address_search_forms(text: str) -> list[str]:
    """The lower-cased strings to look for in stored e-mail addresses when someone searches for ``text``:
    ``text`` itself and, when it holds a readable internationalised domain, the same with that domain in
    its stored IDNA ASCII form (``ann@bücher.example`` and ``bücher.example`` also find
    ``ann@xn--bcher-kva.example``). A name search is unaffected: a text IDNA cannot encode adds nothing."""
    typed = unicodedata.normalize("NFC", text.strip()).lower()
    forms = [typed]
    if typed.isascii():
        return forms
    if "@" in typed:
        forms.append(ascii_domain(typed).lower())
    elif " " not in typed:  # a domain or one label of it ("bücher")
        with contextlib.suppress(idna.IDNAError):
            forms.append(idna.encode(typed, uts46=True, transitional=False).decode("ascii"))
    return list(dict.fromkeys(forms))


def email_forms(email: str) -> list[str]:
    """The lower-cased forms ``email`` may be stored under, to look an account up by: its canonical form
    (Unicode NFC, the domain in IDNA ASCII, see ``ascii_domain``), and the same with the domain as typed
    and in its readable Unicode form (accounts made before addresses were stored canonically, by a client
    that sent the readable form).
    A browser's ``type="email"`` field sends a domain in its ASCII form, a JSON client as typed: both
    reach one account."""
    typed = unicodedata.normalize("NFC", email.strip())
    domain = typed.rpartition("@")[2]
    readable = readable_email(typed) if domain.isascii() else typed
    return list(dict.fromkeys(form.lower() for form in (ascii_domain(typed), typed, readable)))
