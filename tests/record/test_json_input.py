"""Strict JSON for patient records: what json.loads lets through or crashes on is refused with a message."""

from __future__ import annotations

import pytest

from painml.record.json_input import parse_json


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b'{"age": NaN}', "field 'age' is NaN, which is not a JSON value"),
        (b'{"age": -Infinity}', "field 'age' is -Infinity, which is not a JSON value"),
        (b'[{"age": 1}, {"pd_burning": Infinity}]', "record 2, field 'pd_burning' is Infinity"),
        (b'{"age": 50, "age": 60}', "field 'age' is given twice"),
        (b'[{"a": 1}, {"b": {"c": 1, "c": 2}}]', "field 'c' is given twice"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"age": ' + b"9" * 5_000 + b"}", "digits"),
        ('{"sex": "männlich"}'.encode("latin-1"), "not UTF-8 text \\(byte 11"),
        ('{"age": 50}'.encode("utf-16"), "UTF-16"),
        (b'{"patient_id": "\\ud800"}', "lone surrogate"),
        (b"   ", "is empty"),
        (b'{"age": 5', "not valid JSON"),
    ],
)
def test_refused_with_a_message(data, needle):
    with pytest.raises(ValueError, match=needle) as caught:
        parse_json(data, "patient.json")
    assert str(caught.value).startswith("patient.json")


def test_plain_records_pass_unchanged():
    assert parse_json(b'\xef\xbb\xbf{"age": 50, "burning": null, "site": "\\u00e9"}', "x") == {
        "age": 50,
        "burning": None,
        "site": "é",
    }
    assert parse_json(b'[{"age": 1e2}]', "x") == [{"age": 100.0}]
