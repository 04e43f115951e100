"""A page's HTML as a small element tree (Python's ``html.parser``), for tests about a page's structure.

Closing tags the page leaves out (``</p>``, ``</li>``) are closed where their parent closes, as a
browser would; void elements (``<input>``, ``<img>``) never hold children. Enough to ask "which form
is this input in?" or "is this table inside a scroll box?", not a full HTML5 parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser

PHRASING = frozenset({"a", "abbr", "b", "code", "em", "i", "label", "small", "span", "strong", "sub", "sup"})
"""Elements whose text runs on with its neighbours' ("Add to cart<span>: Chair</span>" reads "Add to cart: Chair")."""
VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
)


@dataclass
class Element:
    """One element: tag, attributes, parent, children (elements and text, in order)."""

    tag: str
    attrs: dict[str, str]
    parent: Element | None = None
    children: list[Element | str] = field(default_factory=list)
    line: int = 0

    def iter(self) -> Iterator[Element]:
        """This element and every element below it, in document order."""
        yield self
        for child in self.children:
            if isinstance(child, Element):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Elements below (and including) this one with ``tag`` and every attribute given
        (``class_`` matches one class of the element; other underscores stand for dashes)."""
        found = []
        for element in self.iter():
            if tag is not None and element.tag != tag:
                continue
            if all(element.has(name, value) for name, value in attrs.items()):
                found.append(element)
        return found

    def find(self, tag: str | None = None, **attrs: str) -> Element:
        """The first element ``find_all`` would return; ``AssertionError`` when there is none."""
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag or '*'} {attrs}> in <{self.tag}>"
        return found[0]

    def has(self, name: str, value: str) -> bool:
        """True when attribute ``name`` is ``value`` (for ``class_``: when ``value`` is one of the classes)."""
        if name == "class_":
            return value in self.attrs.get("class", "").split()
        return self.attrs.get(name.replace("_", "-")) == value

    def ancestors(self) -> Iterator[Element]:
        """The parent, its parent, ... up to the document."""
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def text(self) -> str:
        """The text inside, whitespace collapsed (hidden text included, as a screen reader reads it)."""
        return re.sub(r"\s+", " ", self._raw_text()).strip()

    def _raw_text(self) -> str:
        parts: list[str] = []
        for child in self.children:
            if isinstance(child, str):
                parts.append(child)
            elif child.tag in PHRASING:
                parts.append(child._raw_text())
            else:
                parts.append(f" {child._raw_text()} ")
        return "".join(parts)


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current, line=self.getpos()[0])
        self.current.children.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.current.children.append(Element(tag, {k: v or "" for k, v in attrs}, self.current, line=self.getpos()[0]))

    def handle_endtag(self, tag: str) -> None:
        open_tags = [self.current, *self.current.ancestors()]
        for element in open_tags:
            if element.tag == tag and element.parent is not None:
                self.current = element.parent
                return

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str) -> Element:
    """The document element tree of ``html``."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def nested_forms(html: str) -> list[str]:
    """Every ``<form>`` that starts inside another form (browsers drop it), as "line N: <form ...>"."""
    found = []
    for form in parse(html).find_all("form"):
        if any(ancestor.tag == "form" for ancestor in form.ancestors()):
            attrs = " ".join(f'{k}="{v}"' for k, v in form.attrs.items() if k in {"id", "class", "action"})
            found.append(f"line {form.line}: <form {attrs}>")
    return found


def form_fields(document: Element, form_id: str) -> list[Element]:
    """The controls a browser submits with form ``form_id``: inside it (unless they name another form
    with ``form=``) or anywhere with ``form="form_id"``."""
    form = document.find("form", id=form_id)
    controls = ("input", "select", "textarea", "button")
    inside = [e for e in form.iter() if e.tag in controls and e.attrs.get("form", form_id) == form_id]
    outside = [e for e in document.iter() if e.tag in controls and e.attrs.get("form") == form_id]
    return inside + [e for e in outside if e not in inside]
