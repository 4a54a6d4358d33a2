"""Dotted legal forms normalise the same with or without their last dot, so one organisation is one key."""

from entity_resolution.normalize import normalize_name


def test_dotted_legal_form_without_its_last_dot_is_still_dropped():
    # before: "Iron Compass Supply B.V" (a mention cut before the final dot) became the key
    # "iron compass supply b v", a second entity beside the CRM's "Iron Compass Supply B.V."
    assert normalize_name("Iron Compass Supply B.V") == normalize_name("Iron Compass Supply B.V.") == "iron compass supply"
    assert normalize_name("Polar Granite Trading S.A") == "polar granite trading"


def test_initials_inside_a_name_are_not_taken_for_a_legal_form():
    assert normalize_name("J.Smith Logistics") == "j smith logistics"
    assert normalize_name("Globex N.V. Rotterdam") == "globex rotterdam"
