"""The search index's word rules: folding, stemming, SKU words, typo candidates, the engines' query texts."""

from __future__ import annotations

import importlib.util

import pytest

from webshop.catalog.search import (
    PG_DOCUMENT,
    SearchPlan,
    WordMatch,
    edit_distance,
    edits1,
    sku_terms,
    stem,
    terms,
    words,
)
from webshop.db.engine import PROJECT_ROOT


def test_words_are_folded_split_and_accent_free():
    assert words("Crème Brûlée, Straße & SC3137-056") == ["creme", "brulee", "strasse", "sc3137", "056"]
    assert words("%") == []


@pytest.mark.parametrize(
    ("plural", "singular"),
    [
        ("shoes", "shoe"),
        ("boxes", "box"),
        ("watches", "watch"),
        ("lenses", "lens"),
        ("batteries", "battery"),
        ("glasses", "glass"),
        ("houses", "house"),
        ("sizes", "size"),
        ("toys", "toy"),
        ("cameras", "camera"),
        ("tables", "table"),
    ],
)
def test_plural_and_singular_have_one_stem(plural, singular):
    assert stem(plural) == stem(singular)


def test_stem_keeps_short_words_words_with_digits_and_latin_endings():
    assert [stem(w) for w in ("bus", "gas", "8gb", "cactus", "tennis", "glass")] == [
        "bus",
        "gas",
        "8gb",
        "cactus",
        "tennis",
        "glass",
    ]
    assert terms("Running Shoes") == ["running", "sho"]


def test_sku_words_include_the_parts_run_together():
    assert sku_terms("404.038.96") == ["404", "038", "96", "40403896"]
    assert sku_terms("L2201308") == ["l2201308"]


def test_one_edit_candidates_and_distance():
    candidates = edits1("camra")
    assert {"camera", "cmara", "cara", "camar"} <= candidates
    assert "camra" not in candidates
    assert edit_distance("keybaord", "keyboard") == 1  # two neighbours swapped: one edit
    assert edit_distance("cmaeraa", "camera") == 2
    assert edit_distance("", "abc") == 3


def test_engine_query_texts():
    plan = SearchPlan(
        "shoes camra",
        (WordMatch("shoes", "sho", "shoes"), WordMatch("camra", "camra", "camra", ("camera",), known=False)),
        ("shoes camra", "SHOES CAMRA"),
    )
    assert plan.fts_query() == '("sho" OR "shoes"*) AND ("camra" OR "camra"* OR "camera")'
    assert plan.fts_query("whole") == '("sho") OR ("camra" OR "camera")'
    assert plan.ts_query() == "('sho' | 'shoes':*) & ('camra' | 'camra':* | 'camera')"
    assert plan.corrected and not plan.has_inside


def test_a_word_inside_compound_names_is_matched_in_names_only():
    plan = SearchPlan("chair", (WordMatch("chair", "chair", "chair", inside=("armchair", "highchair")),), ("chair",))
    assert plan.fts_query() == '("chair" OR "chair"* OR name : "armchair" OR name : "highchair")'
    assert plan.fts_query("whole") == '("chair")'
    assert plan.fts_query("inside") == '(name : "armchair" OR name : "highchair")'
    assert plan.ts_query() == "('chair' | 'chair':* | 'armchair':A | 'highchair':A)"
    assert plan.has_inside


def test_the_migration_indexes_the_expression_the_queries_use():
    path = next((PROJECT_ROOT / "migrations" / "versions").glob("*_search_index_product_summaries.py"))
    spec = importlib.util.spec_from_file_location("search_migration", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.PG_DOCUMENT == PG_DOCUMENT
