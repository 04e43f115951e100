"""The full-text product index on both engines, and the search queries over it.

**Documents.** ``reindex_products(session, ids)`` writes one ``product_search`` row per *visible*
product (active, not soft-deleted; others have none): its name, SKUs, brand, category path, option
and facet values and description, each reduced to index words by ``terms`` (lowercase, accents off,
split on anything that is not a letter or digit, simple English plural stemming so that "shoes" and
"shoe" are one word). Every catalog write calls it in its own transaction (through
``webshop.catalog.browse.catalog_changed``), so the index never lags behind the catalog.

**Engines.** SQLite: an external-content FTS5 table ``product_search_fts`` over ``product_search``
(``unicode61`` tokenizer, prefix indexes), kept in step by three triggers on ``product_search``,
ranked with ``bm25`` and column weights. PostgreSQL: a GIN index on the row's weighted ``tsvector``
(``'simple'`` configuration: the words are normalised already), ranked with ``ts_rank``, and a
``pg_trgm`` GIN index on the vocabulary for prefix look-ups and "Did you mean" words further than
one edit away. The migration creates (and drops) them; the SQLite objects are not in the models
(``is_search_index_table`` tells them apart for schema comparisons).

**Vocabulary.** ``search_terms`` holds every index word with the number of products that use it,
maintained by the same ``reindex_products`` with atomic increments. A query word that is neither an
index word nor the beginning of one, and has 4 or more letters, also matches the index words one
edit away (one letter wrong, missing, extra, or two neighbours swapped), generated here and looked up
by primary key.

**Queries.** ``plan_search`` turns the shopper's text into a ``SearchPlan``: for every word the forms
it matches (its stem exactly, the word as typed as a prefix, typo corrections). Every word must
match (AND), in any order, in any field. ``SearchPlan.ranked`` is a ``(product_id, score)``
subquery, lower score first: an exact SKU, then name and SKU matches above brand and category, above
options, above description. A text with no word in it (``%``) falls back to a literal substring
search of name and description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    and_,
    bindparam,
    column,
    func,
    literal,
    literal_column,
    or_,
    select,
    table,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.query import visible_products
from webshop.db.folding import fold as fold_case
from webshop.db.folding import folded
from webshop.db.models import Product, ProductSearch, SearchTerm, Variant
from webshop.text import without_accents

FIELDS = ("name", "skus", "brand", "categories", "options", "description")
"""The document's fields, in the FTS5 table's column order."""
SQLITE_WEIGHTS = (10.0, 10.0, 4.0, 4.0, 2.0, 1.0)
"""``bm25`` weight of each field of ``FIELDS``."""
PG_WEIGHTS = "{0.05, 0.2, 0.4, 1.0}"
"""``ts_rank`` weights of the classes D (description), C (options), B (brand, categories), A (name, SKUs)."""
PG_CLASSES = ("A", "A", "B", "B", "C", "D")
FTS_TABLE = "product_search_fts"
SEARCH_INDEX_TABLES = frozenset(
    {FTS_TABLE} | {f"{FTS_TABLE}_{suffix}" for suffix in ("data", "idx", "docsize", "config", "content")}
)
"""SQLite tables of the FTS5 index (the virtual table and its shadow tables)."""
SEARCH_INDEX_OBJECTS = SEARCH_INDEX_TABLES | {"ix_product_search_document", "ix_search_terms_term_trgm"}
"""Database objects of the search index that the models do not describe (the migration makes them)."""
PG_DOCUMENT = " || ".join(
    f"setweight(to_tsvector('simple'::regconfig, {name}), '{weight}')"
    for name, weight in zip(FIELDS, PG_CLASSES, strict=True)
)
"""The weighted ``tsvector`` of a ``product_search`` row; the GIN index is on exactly this expression."""

MIN_TYPO_LENGTH = 4
"""Words this long or longer match index words one edit away."""
MIN_INSIDE_LENGTH = 4
"""Words this long or longer also match index words that hold them after their start ("chair": armchair)."""
INSIDE_WEIGHT = 0.5
"""Share of the rank a compound in a name adds (the word itself adds the whole: ``ranked``)."""
MAX_INSIDE_MATCHES = 24
"""At most this many such index words per query word, the most used first. The vocabulary does not say
which field a word comes from, so words of descriptions take places too: a generous number keeps the
names' compounds among them."""
MAX_TERM_LENGTH = 64
MAX_QUERY_WORDS = 8
SKU_SCORE = -1e9
"""Score of a product whose SKU is the query: ahead of any full-text score (bm25 and -ts_rank are > -1e3)."""

_WORD = re.compile(r"[^\W_]+")
_LETTERS = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
_VOWELS = frozenset("aeiou")


def is_search_index_object(name: str | None) -> bool:
    """True for a table or index of the engine's search index that is not in the models (for
    schema comparisons: Alembic's autogenerate and the migration tests skip these)."""
    return name in SEARCH_INDEX_OBJECTS


# --- words -------------------------------------------------------------------------------------------


fold = without_accents
"""A search text's words as the index keeps them: case folded, accents removed (``webshop.text``)."""


def words(text: str) -> list[str]:
    """The folded words of ``text``: runs of letters and digits (``"SC3137-056"`` -> ``["sc3137", "056"]``)."""
    return [word[:MAX_TERM_LENGTH] for word in _WORD.findall(fold(text))]


def stem(word: str) -> str:
    """A folded word's index form: singular and plural forms of English nouns come out the same.

    Deliberately small and symmetric (index and query words go through it alike): a final ``s`` goes
    (not after ``s``, ``u`` or ``i``: glass, bus, iris), then a final ``e``, then once more an ``s``,
    and ``ies``/consonant + ``y`` become ``i``. So shoe/shoes -> ``sho``, box/boxes -> ``box``,
    lens/lenses -> ``len``, battery/batteries -> ``batteri``. Words of 3 letters or fewer and words
    with digits are kept as they are.
    """
    if len(word) <= 3 or not word.isalpha():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "i"
    word = _strip_s(word)
    if word.endswith("e") and len(word) > 3:
        word = _strip_s(word[:-1])
    if word.endswith("y") and len(word) > 3 and word[-2] not in _VOWELS:
        word = word[:-1] + "i"
    return word


def _strip_s(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def terms(text: str) -> list[str]:
    """The index words of ``text`` in order (duplicates kept): ``stem`` of each of ``words``."""
    return [stem(word) for word in words(text)]


def sku_terms(sku: str) -> list[str]:
    """Index words of a SKU: its parts and, for a SKU in several parts, all of them run together
    (``"404.038.96"`` -> ``["404", "038", "96", "40403896"]``), so it is found typed either way."""
    parts = words(sku)
    joined = "".join(parts)[:MAX_TERM_LENGTH]
    return [stem(part) for part in parts] + ([joined] if len(parts) > 1 else [])


def edits1(word: str) -> set[str]:
    """Every string one edit from ``word``: a letter deleted, inserted, replaced, or two neighbours swapped."""
    letters = _LETTERS + (_DIGITS if any(ch.isdigit() for ch in word) else "")
    letters += "".join(sorted({ch for ch in word if ch not in letters}))
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    deletes = {a + b[1:] for a, b in splits if b}
    swaps = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    replaces = {a + c + b[1:] for a, b in splits if b for c in letters}
    inserts = {a + c + b for a, b in splits for c in letters}
    return (deletes | swaps | replaces | inserts) - {word}


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: inserts, deletes, replacements and swaps of neighbours cost 1."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def _visible() -> Any:
    return visible_products()


# --- queries ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WordMatch:
    """What one query word matches.

    Attributes:
        word: The word as typed, folded.
        exact: Its stem, matched as a whole index word.
        prefix: The typed word matched as the beginning of index words (``None`` for one letter).
        typos: Index words one edit away, when neither ``exact``, ``prefix`` nor ``inside`` is in the index.
        inside: Index words that hold ``exact`` after their start (``chair``: ``armchair``, ``highchair``),
            matched in product names only: a compound's head word is what the shopper names, but
            "ring" inside "spring" in a description is noise.
        known: ``exact``, ``prefix`` or ``inside`` is in the index.
    """

    word: str
    exact: str
    prefix: str | None
    typos: tuple[str, ...] = ()
    known: bool = True
    inside: tuple[str, ...] = ()


@dataclass(frozen=True)
class SearchPlan:
    """A search text made ready for the engine: its words' matches and the SKU it may be.

    ``words`` empty means the text has no letter or digit: ``ranked`` then matches ``text`` as a
    literal substring of name or description.
    """

    text: str
    words: tuple[WordMatch, ...]
    skus: tuple[str, ...]

    @property
    def corrected(self) -> bool:
        """Some word matched only through typo corrections."""
        return any(not word.known and word.typos for word in self.words)

    def fts_query(self, part: str = "every") -> str:
        """The SQLite FTS5 query of one ``part`` of the ranking (``SEARCH_PARTS``):

        - ``every`` (what matches): ``("sho" OR "shoe"*) AND ("chair" OR "chair"* OR name : "armchair")``;
        - ``whole``: the words' whole forms, any of them (``"sho" OR "chair"``): ranks a product with the
          word itself above one with only a longer word starting with it;
        - ``inside``: the compounds in names, any of them (``name : "armchair"``): ranks a name that
          holds the word above a description that has it.
        """
        return self._query(part, '"{}"', '"{}"*', 'name : "{}"', " OR ", " AND ")

    def ts_query(self, part: str = "every") -> str:
        """The PostgreSQL ``to_tsquery`` text (see ``fts_query``; class A is the name and SKUs):
        ``('sho' | 'shoe':*) & ('chair' | 'chair':* | 'armchair':A)``."""
        return self._query(part, "'{}'", "'{}':*", "'{}':A", " | ", " & ")

    @property
    def has_inside(self) -> bool:
        """Some word matches compounds in names (``WordMatch.inside``)."""
        return any(word.inside for word in self.words)

    def _query(self, part: str, term: str, prefix: str, in_name: str, either: str, every: str) -> str:
        groups = []
        for word in self.words:
            options = [] if part == "inside" else [term.format(word.exact), *(term.format(t) for t in word.typos)]
            if part != "whole":
                options.extend(in_name.format(compound) for compound in word.inside)
            if word.prefix and part == "every":
                options.insert(1, prefix.format(word.prefix))
            if options:
                groups.append("(" + either.join(dict.fromkeys(options)) + ")")
        return (every if part == "every" else either).join(groups)

    def ranked(self, dialect: str) -> Any:
        """``(product_id, score)`` of every product the text matches, lower score better (a subquery).

        Visibility and the other filters are the caller's; products without a document (not
        visible) never match the full-text part.
        """
        parts = []
        if self.skus:
            parts.append(
                select(Variant.product_id.label("product_id"), literal(SKU_SCORE).label("score")).where(
                    Variant.sku.in_(self.skus)
                )
            )
        if not self.words:
            pattern = f"%{escape_like(fold_case(self.text))}%"
            parts.append(
                select(Product.id.label("product_id"), literal(0.0).label("score")).where(
                    or_(
                        folded(Product.name).like(pattern, escape="\\"),
                        folded(Product.description).like(pattern, escape="\\"),
                    )
                )
            )
        elif dialect == "postgresql":
            document: Any = literal_column(f"({PG_DOCUMENT})")
            config: Any = literal_column("'simple'::regconfig")
            weights: Any = literal_column(f"'{PG_WEIGHTS}'::float4[]")
            query = func.to_tsquery(config, bindparam("ts_query", self.ts_query()))
            whole = func.to_tsquery(config, bindparam("ts_whole", self.ts_query("whole")))
            # The whole words' rank again: a product with the word itself beats one with a longer word;
            # and half the compounds' in names: a name holding the word beats a description having it.
            rank = func.ts_rank(weights, document, query) + func.ts_rank(weights, document, whole)
            if self.has_inside:
                inside = func.to_tsquery(config, bindparam("ts_inside", self.ts_query("inside")))
                rank = rank + INSIDE_WEIGHT * func.ts_rank(weights, document, inside)
            parts.append(
                select(ProductSearch.product_id.label("product_id"), (-rank).label("score"))
                .select_from(ProductSearch)
                .where(document.op("@@")(query))
            )
        else:
            parts.append(self._fts_ranked())
        if len(parts) == 1:
            return parts[0].subquery("ranked")
        both = union_all(*parts).subquery("matches")
        return (
            select(both.c.product_id, func.min(both.c.score).label("score"))
            .group_by(both.c.product_id)
            .subquery("ranked")
        )

    def _fts_ranked(self) -> Any:
        """SQLite: ``bm25`` of the query, plus ``bm25`` of its whole words for the rows that have them."""

        def matches(name: str, query: str) -> Any:
            fts = table(FTS_TABLE, column("rowid"))
            sqlite_weights: list[Any] = [literal_column(repr(weight)) for weight in SQLITE_WEIGHTS]
            return (
                select(
                    fts.c.rowid.label("product_id"),
                    func.bm25(literal_column(FTS_TABLE), *sqlite_weights).label("score"),
                )
                .select_from(fts)
                .where(literal_column(FTS_TABLE).op("MATCH")(bindparam(name, query)))
                .subquery(name)
            )

        every = matches("fts_query", self.fts_query())
        whole = matches("fts_whole", self.fts_query("whole"))
        score = every.c.score + func.coalesce(whole.c.score, 0.0)
        ranked = select(every.c.product_id).outerjoin(whole, whole.c.product_id == every.c.product_id)
        if self.has_inside:
            inside = matches("fts_inside", self.fts_query("inside"))
            score = score + INSIDE_WEIGHT * func.coalesce(inside.c.score, 0.0)
            ranked = ranked.outerjoin(inside, inside.c.product_id == every.c.product_id)
        return ranked.add_columns(score.label("score"))


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards escaped (escape character ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix_range(prefix: str) -> tuple[str, str]:
    """``[low, high)`` holding exactly the strings starting with ``prefix``, in binary order."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _prefix_condition(prefix: str, dialect: str) -> Any:
    if dialect == "postgresql":  # the pg_trgm index answers LIKE 'x%'; a range needs the "C" collation
        return SearchTerm.term.like(f"{prefix}%")
    low, high = _prefix_range(prefix)
    return and_(SearchTerm.term >= low, SearchTerm.term < high)


async def plan_search(session: AsyncSession, text: str) -> SearchPlan:
    """Read the shopper's ``text`` into a ``SearchPlan`` (a few primary-key look-ups in the vocabulary).

    Args:
        session: Any session (reads only).
        text: The search box's text (already trimmed and cut to ``MAX_QUERY_LENGTH``).

    Returns:
        The plan: at most ``MAX_QUERY_WORDS`` words; the text itself (and its upper case) as SKU candidates.
    """
    dialect = session.get_bind().dialect.name
    raw = text.strip()
    skus = tuple(dict.fromkeys(s for s in (raw, raw.upper()) if s and len(s) <= 64))
    typed = list(dict.fromkeys(words(raw)))[:MAX_QUERY_WORDS]
    if not typed:
        return SearchPlan(raw, (), skus)
    stems = [stem(word) for word in typed]
    known = set(
        await session.scalars(select(SearchTerm.term).where(SearchTerm.term.in_(set(stems)), SearchTerm.doc_count > 0))
    )
    prefixes = {
        word: await session.scalar(
            select(SearchTerm.term).where(_prefix_condition(word, dialect), SearchTerm.doc_count > 0).limit(1)
        )
        is not None
        for word, word_stem in zip(typed, stems, strict=True)
        if word_stem not in known and len(word) >= 2
    }
    matches = []
    for word, word_stem in zip(typed, stems, strict=True):
        prefix = word if len(word) >= 2 else None
        inside = await _inside(session, word_stem)
        found = word_stem in known or prefixes.get(word, False) or bool(inside)
        typos: tuple[str, ...] = ()
        if not found and len(word) >= MIN_TYPO_LENGTH and word.isalpha():
            typos = await _typos(session, word)
        matches.append(WordMatch(word, word_stem, prefix, typos, found, inside))
    return SearchPlan(raw, tuple(matches), skus)


async def _inside(session: AsyncSession, word_stem: str) -> tuple[str, ...]:
    """Index words that hold ``word_stem`` after their first letter ("chair": armchair, highchair), the
    most used first, at most ``MAX_INSIDE_MATCHES``; none for a stem shorter than ``MIN_INSIDE_LENGTH``
    letters or with digits. PostgreSQL answers ``LIKE '%x%'`` from the vocabulary's ``pg_trgm`` index;
    SQLite reads the vocabulary (one row per distinct word, not per product)."""
    if len(word_stem) < MIN_INSIDE_LENGTH or not word_stem.isalpha():
        return ()
    rows = await session.scalars(
        select(SearchTerm.term)
        .where(SearchTerm.term.like(f"%_{escape_like(word_stem)}%", escape="\\"), SearchTerm.doc_count > 0)
        .order_by(SearchTerm.doc_count.desc(), SearchTerm.term)
        .limit(MAX_INSIDE_MATCHES)
    )
    return tuple(rows)


async def _typos(session: AsyncSession, word: str, *, limit: int = 8) -> tuple[str, ...]:
    """Index words one edit from ``word`` (or whose stem is), the closest to its stem only, most used first.

    "tenis" is one edit from "tennis" and from "tents" (index word ``tent``); only ``tennis`` is one
    edit from the stem ``tenis`` as well, so "tenis" finds the tennis ball, not the tent.
    """
    word_stem = stem(word)
    candidates = {stem(edit) for edit in edits1(word)} | edits1(word_stem)
    candidates.discard(word_stem)
    rows = await session.execute(
        select(SearchTerm.term)
        .where(SearchTerm.term.in_(sorted(candidates)), SearchTerm.doc_count > 0)
        .order_by(SearchTerm.doc_count.desc(), SearchTerm.term)
    )
    found = list(rows.scalars())
    if not found:
        return ()
    distances = {term: edit_distance(word_stem, term) for term in found}
    closest = min(distances.values())
    return tuple(term for term in found if distances[term] == closest)[:limit]


async def suggest(session: AsyncSession, plan: SearchPlan) -> str | None:
    """A corrected search text for a search that found nothing ("Did you mean ...?"), or ``None``.

    Each word that is not in the index is replaced by the most used index word within two edits of
    it (one edit: the plan's typo corrections; two: ``pg_trgm`` similarity on PostgreSQL, words with
    the same first letter on SQLite). The suggestion is offered only if it finds something itself.
    """
    if not plan.words:
        return None
    changed, out = False, []
    for match in plan.words:
        replacement = None
        if not match.known:
            replacement = await _closest_word(session, match)
        if replacement and replacement != match.word:
            changed = True
            out.append(replacement)
        else:
            out.append(match.word)
    if not changed:
        return None
    suggestion = " ".join(out)
    corrected = await plan_search(session, suggestion)
    dialect = session.get_bind().dialect.name
    ranked = corrected.ranked(dialect)
    found = await session.scalar(
        select(ranked.c.product_id).join(Product, Product.id == ranked.c.product_id).where(_visible()).limit(1)
    )
    return suggestion if found is not None else None


async def _closest_word(session: AsyncSession, match: WordMatch) -> str | None:
    """The shown form of the most used index word within two edits of ``match.word``."""
    if match.typos:
        return await session.scalar(select(SearchTerm.word).where(SearchTerm.term == match.typos[0]))
    if len(match.word) < MIN_TYPO_LENGTH:
        return None
    # Candidates: words of about the same length with the same first letter (the usual case), and on
    # PostgreSQL also the trigram-similar ones (pg_trgm), which catch a wrong first letter.
    dialect = session.get_bind().dialect.name
    nearby = _prefix_condition(match.word[0], dialect)
    if dialect == "postgresql":
        nearby = or_(nearby, SearchTerm.term.op("%")(match.word))
    statement = (
        select(SearchTerm.term, SearchTerm.word, SearchTerm.doc_count)
        .where(
            nearby,
            func.length(SearchTerm.term).between(len(match.exact) - 2, len(match.word) + 2),
            SearchTerm.doc_count > 0,
        )
        .limit(5000)
    )
    best: tuple[int, int, str] | None = None
    for term, shown, count in (await session.execute(statement)).all():
        distance = min(edit_distance(match.word, shown), edit_distance(match.exact, term))
        if distance <= 2 and (best is None or (distance, -count, shown) < best):
            best = (distance, -count, shown)
    return best[2] if best else None
