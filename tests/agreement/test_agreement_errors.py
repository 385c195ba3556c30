"""Bad reliability data gets a clear error that says what is wrong and where."""

from __future__ import annotations

import pytest

from alloop.tools import agreement as ag
from alloop.tools.errors import InputError


def rows(*triples):
    return [{"unit": u, "coder": c, "value": v} for u, c, v in triples]


def test_empty_input():
    with pytest.raises(InputError, match="empty"):
        ag.Ratings.from_rows([])


def test_empty_file(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text("\n")
    with pytest.raises(InputError, match=r"a\.jsonl: the file is empty"):
        ag.read_annotations(path)


def test_malformed_line_names_file_and_line(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"unit": 1, "coder": "a", "value": "x"}\n{"unit": 1,\n')
    with pytest.raises(InputError, match=r"a\.jsonl:2: not valid JSON"):
        ag.read_annotations(path)


def test_one_coder_only():
    with pytest.raises(InputError, match=r"only one coder \('ann'\)"):
        ag.Ratings.from_rows(rows((1, "ann", "x"), (2, "ann", "y")))


def test_no_unit_with_two_values():
    with pytest.raises(InputError, match="no unit has values from two coders"):
        ag.Ratings.from_rows(rows((1, "ann", "x"), (2, "bob", "y")))


def test_value_outside_the_label_schema_names_the_row():
    data = rows((1, "ann", "pos"), (1, "bob", "neutral"))
    with pytest.raises(InputError, match=r"annotations:2: value 'neutral' is not in the label schema"):
        ag.Ratings.from_rows(data, labels=["pos", "neg"])


def test_interval_needs_numbers():
    with pytest.raises(InputError, match=r":2: value 'high' is not a number; level 'interval'"):
        ag.Ratings.from_rows(rows((1, "ann", 3), (1, "bob", "high")), level="interval")


def test_interval_schema_needs_numeric_labels():
    with pytest.raises(InputError, match="needs numeric labels"):
        ag.Ratings.from_rows(rows((1, "ann", "lo"), (1, "bob", "hi")), level="interval", labels=["lo", "hi"])


def test_ratio_refuses_negative_values():
    with pytest.raises(InputError, match="negative; level 'ratio'"):
        ag.Ratings.from_rows(rows((1, "ann", 3), (1, "bob", -1)), level="ratio")


def test_ordinal_text_needs_the_label_order():
    with pytest.raises(InputError, match="needs numbers or the label order"):
        ag.Ratings.from_rows(rows((1, "ann", "lo"), (1, "bob", "hi")), level="ordinal")


def test_a_coder_coding_a_unit_twice():
    data = rows((1, "ann", "x"), (1, "bob", "x"), (1, "ann", "y"))
    with pytest.raises(InputError, match=r"annotations:3: coder 'ann' already coded unit '1' on line 1"):
        ag.Ratings.from_rows(data)


def test_list_values_are_refused_at_single_value_levels():
    with pytest.raises(InputError, match="for multi-select answers use level masi or jaccard"):
        ag.Ratings.from_rows(rows((1, "ann", ["a", "b"]), (1, "bob", ["a"])))


def test_missing_field():
    with pytest.raises(InputError, match=r"annotations:1: no 'coder' field"):
        ag.Ratings.from_rows([{"unit": 1, "value": "x"}])


def test_mixed_numbers_and_text():
    with pytest.raises(InputError, match="mix numbers and text"):
        ag.Ratings.from_rows(rows((1, "ann", 1), (1, "bob", "x")))


def test_fleiss_is_nominal_only():
    ratings = ag.Ratings.from_rows(rows((1, "a", 1), (1, "b", 2), (2, "a", 2), (2, "b", 2)), level="ordinal")
    with pytest.raises(InputError, match="Fleiss' κ is for nominal data"):
        ag.agreement(ratings, "fleiss_kappa")


def test_cohen_has_no_ratio_form():
    ratings = ag.Ratings.from_rows(rows((1, "a", 1), (1, "b", 2), (2, "a", 2), (2, "b", 2)), level="ratio")
    with pytest.raises(InputError, match="no ratio form"):
        ag.agreement(ratings, "cohens_kappa")


def test_missing_values_are_skipped_not_filled():
    data = rows((1, "a", "x"), (1, "b", "x"), (2, "a", "y"), (2, "b", None), (3, "a", "y"), (3, "b", "y"))
    ratings = ag.Ratings.from_rows(data)
    assert ratings.pairable().tolist() == [True, False, True]
    assert ag.agreement(ratings, "percent").value == 1.0


def test_all_values_alike_is_undefined_not_an_error():
    ratings = ag.Ratings.from_rows(rows((1, "a", "x"), (1, "b", "x"), (2, "a", "x"), (2, "b", "x")), labels=["x", "y"])
    result = ag.agreement(ratings, bootstrap_samples=20)
    assert result.value is None and "undefined" in result.note
