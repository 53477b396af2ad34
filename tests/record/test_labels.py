"""Labels as clinics record them: mapped, dropped, or refused in one line per unknown value."""

from __future__ import annotations

import pandas as pd
import pytest

from painml.record.labels import apply_label_rules, resolve
from painml.record.problems import SchemaError

CLASSES = ("nociceptive", "neuropathic")


def _raw(labels: list[str | None]) -> pd.DataFrame:
    return pd.DataFrame({"patient_id": [f"p{i}" for i in range(len(labels))], "pain_type": labels})


def test_map_chains_and_drop_are_counted():
    raw = _raw(["nociceptive", " Both ", "mixed", "unknown", "neuropathic", "unknown"])
    out = apply_label_rules(raw, CLASSES, {"both": "mixed", "mixed": "neuropathic"}, ["unknown"])
    assert out.keep.tolist() == [True, True, True, False, True, False]
    assert out.labels.tolist() == ["nociceptive", "neuropathic", "neuropathic", "neuropathic"]
    assert out.mapped == {"'both' -> neuropathic": 1, "'mixed' -> neuropathic": 1}
    assert out.dropped == {"unknown": 2}
    assert out.summary() == [
        "label 'both' -> neuropathic in 1 rows",
        "label 'mixed' -> neuropathic in 1 rows",
        "label 'unknown' dropped: 2 rows",
    ]


def test_an_unknown_label_is_one_problem_with_its_count():
    raw = _raw(["nociceptive"] * 3 + ["neuropatic"] * 2117 + ["mixed"] * 4)
    with pytest.raises(SchemaError) as caught:
        apply_label_rules(raw, CLASSES, source="file clinic.csv")
    problems = caught.value.problems
    assert len(problems) == 2
    assert "label 'neuropatic' in 2,117 rows of the file clinic.csv (rows 4, 5, 6, 7, 8, ...) is not one of" in str(
        problems[0]
    )
    assert "map it to a class or drop it" in str(problems[0])
    assert "'mixed' in 4 rows" in str(problems[1])


def test_empty_labels_are_left_to_the_schema():
    out = apply_label_rules(_raw(["nociceptive", None, ""]), CLASSES)
    assert out.keep.all() and out.mapped == {} and out.dropped == {}


def test_a_loop_in_the_map_is_refused():
    with pytest.raises(ValueError, match="loops: a -> b -> a"):
        resolve("a", {"a": "b", "b": "a"})
