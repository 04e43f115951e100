"""What an audit event records as changed (``webshop.audit.service.diff``)."""

from __future__ import annotations

from webshop.audit.service import diff


def test_a_new_row_records_the_fields_it_was_given_not_its_blank_ones():
    """QA: a new shop's history listed "description: — →" for every field left blank."""
    created = {"name": "Café Zoë", "description": "", "country": "", "contact_email": None, "active": False}
    assert diff({}, created) == {"name": [None, "Café Zoë"], "active": [None, False]}


def test_a_change_records_old_and_new_values_and_clearing_a_field():
    before = {"name": "Old", "description": "Hand-made", "country": "FR", "position": 0}
    after = {"name": "New", "description": "", "country": "FR", "position": 1}
    assert diff(before, after) == {"name": ["Old", "New"], "description": ["Hand-made", ""], "position": [0, 1]}
    assert diff({"description": None}, {"description": ""}) == {}
