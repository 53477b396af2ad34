"""A corpus of malformed patient files and JSON records, generated (not committed) from the sample cohort.

Each case says what a careful tool must do with it:

- ``valid``: read as meant; ``validate`` exits 0 and ``batch`` scores every row;
- ``rows``: some rows are bad; ``validate`` exits 1 and ``batch`` scores the
  others and lists the bad ones in the errors file;
- ``refused``: the file as a whole cannot be scored; ``validate`` exits 1 and
  ``batch`` exits 1 writing nothing.

JSON cases are for ``serve predict``: ``ok`` (exit 0, maybe flagged) or
``refused`` (exit 1, a message). Run ``python tests/corpus/make_corpus.py DIR``
to write the corpus into DIR and list it.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pandas as pd

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample_cohort.csv"


@dataclass(frozen=True)
class Case:
    name: str
    kind: str
    """What it is an example of (the table groups by it)."""
    expect: str
    path: Path


def _sample(n: int = 12) -> tuple[list[str], list[list[str]]]:
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header = [name for name in rows[0] if name != "pain_type" and not name.startswith("true_")]
    keep = [i for i, name in enumerate(rows[0]) if name in header]
    return header, [[row[i] for i in keep] for row in rows[1 : n + 1]]


def _csv(header: list[str], rows: list[list[str]], sep: str = ",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=sep, lineterminator="\n").writerows([header, *rows])
    return buffer.getvalue()


def csv_cases() -> dict[str, tuple[str, str, bytes]]:
    """name -> (kind, expected outcome, file bytes); the name's suffix is the file's."""
    header, rows = _sample()
    good = _csv(header, rows)
    lines = good.splitlines()
    out: dict[str, tuple[str, str, bytes]] = {}

    def add(name: str, kind: str, expect: str, text: str | bytes) -> None:
        out[name] = (kind, expect, text.encode("utf-8") if isinstance(text, str) else text)

    add("good.csv", "control", "valid", good)
    for sep, word in (("\t", "tab"), (";", "semicolon"), ("|", "pipe")):
        add(f"{word}.csv", "delimiter", "valid", _csv(header, rows, sep))
    add("upper_case_header.csv", "header", "valid", _csv([h.upper() for h in header], rows))
    add("padded_header.csv", "header", "valid", _csv([f" {h} " for h in header], rows))
    add("bom_crlf.csv", "encoding", "valid", "\ufeff" + good.replace("\n", "\r\n"))
    add("foo_bar.csv", "header", "refused", "foo,bar\n1,2\n3,4\n")
    add("space_separated.csv", "delimiter", "refused", good.replace(",", " "))
    add("nul_in_header.csv", "header", "refused", "a\x00ge,s\x00ex\n54,male\n")
    add("misspelled_brush.csv", "header", "refused", _csv([*header[:-1], "brush_alodynia"], rows))
    add("pain_intensity_spaced.csv", "header", "refused", good.replace("pain_intensity", "Pain Intensity", 1))
    add("case_duplicate.csv", "header", "refused", _csv([*header, "AGE"], [[*r, r[2]] for r in rows]))
    add(
        "extra_columns.csv",
        "header",
        "valid",
        _csv([*header, "mrn", "visit_date"], [[*r, "m", "2024-01-01"] for r in rows]),
    )
    add("mostly_unknown.csv", "header", "valid", _csv(["age", *(f"col{i}" for i in range(20))], [["50"] * 21] * 3))
    add("short_row.csv", "structure", "rows", "\n".join([*lines[:3], lines[3].rsplit(",", 4)[0], *lines[4:]]) + "\n")
    add("extra_field.csv", "structure", "rows", "\n".join([*lines[:3], lines[3] + ",surplus", *lines[4:]]) + "\n")
    add("extra_field_first_row.csv", "structure", "rows", "\n".join([lines[0], lines[1] + ",", *lines[2:]]) + "\n")
    add("comment_line.csv", "structure", "rows", "\n".join([*lines[:3], "# exported 2024-05-01", *lines[3:]]) + "\n")
    add("nul_line.csv", "structure", "rows", "\n".join([*lines[:3], "\x00" * 40, *lines[3:]]) + "\n")
    add(
        "nul_in_cell.csv",
        "structure",
        "rows",
        "\n".join([*lines[:3], lines[3].replace(",", ",\x00", 1), *lines[4:]]) + "\n",
    )
    add("blank_lines.csv", "structure", "valid", "\n".join([*lines[:3], "", "   ", *lines[3:]]) + "\n")
    quoted = [[f"{r[0]}\nsecond line", *r[1:]] for r in rows]
    add("quoted_newline.csv", "structure", "valid", _csv(header, quoted))
    add("quoted_short_row.csv", "structure", "rows", _csv(header, quoted) + '"x\ny",north\n')
    add("unclosed_quote.csv", "structure", "refused", good + '"p99,north,54\n')
    add("empty.csv", "structure", "refused", "")
    add("header_only.csv", "structure", "refused", lines[0] + "\n")
    add("latin1.csv", "encoding", "refused", good.replace("north", "nörth").encode("latin-1"))
    add("utf16.csv", "encoding", "refused", good.encode("utf-16"))
    add("bad_values.csv", "values", "rows", good.replace(f",{rows[2][2]},", ",two hundred,", 1))
    dup = [rows[0], rows[1], rows[0]]
    add("duplicate_ids.csv", "values", "valid", _csv(header, dup))
    markup = [["[/]", "[bold]x[/bold]", *rows[0][2:]], ["[link=x]y", "a\\[b", *rows[1][2:]]]
    add("markup_ids.csv", "values", "valid", _csv(header, markup))
    huge = [[*rows[0][:6], "9" * 1_000_000, *rows[0][7:]], *rows[1:]]
    add("huge_cell.csv", "size", "rows", _csv(header, huge))
    wide = ["age", *(f"extra_{i}" for i in range(20_000))]
    add("wide_header.csv", "size", "valid", ",".join(wide) + "\n" + ",".join(["50"] * len(wide)) + "\n")
    add(
        "wide_duplicate.csv",
        "size",
        "refused",
        ",".join([*wide, "age"]) + "\n" + ",".join(["50"] * (len(wide) + 1)) + "\n",
    )
    add("records.xlsx", "format", "refused", b"PK\x03\x04 not a spreadsheet either")
    return out


def parquet_cases(folder: Path) -> list[Case]:
    header, rows = _sample()
    frame = pd.DataFrame(rows, columns=header)
    cases = []
    typed = frame.assign(
        visit_date=pd.date_range("2024-01-01", periods=len(frame), freq="D"),
        fee=[Decimal("12.50")] * len(frame),
        ward=[{"name": "a", "bed": i} for i in range(len(frame))],
    )
    for name, kind, expect, data in (
        ("typed_extras.parquet", "parquet", "valid", typed),
        ("no_record_columns.parquet", "parquet", "refused", pd.DataFrame({"foo": [1, 2], "bar": ["x", "y"]})),
        ("upper_case.parquet", "parquet", "valid", frame.rename(columns=str.upper)),
    ):
        path = folder / name
        data.to_parquet(path, index=False)
        cases.append(Case(name, kind, expect, path))
    broken = folder / "broken.parquet"
    broken.write_bytes(b"PAR1" + b"\x00" * 64)
    cases.append(Case(broken.name, "parquet", "refused", broken))
    return cases


def json_cases() -> dict[str, tuple[str, bytes]]:
    """name -> (expected outcome, bytes) for ``serve predict --input``."""
    header, rows = _sample(1)
    record = {k: v for k, v in zip(header, rows[0]) if v != ""}
    good = json.dumps(record).encode()
    return {
        "good.json": ("ok", good),
        "empty_object.json": ("ok", b"{}"),
        "four_fields.json": ("ok", b'{"age": 60, "sex": "male", "burning": true, "numbness": true}'),
        "markup_id.json": ("ok", json.dumps({**record, "patient_id": "[/]", "site": "[red]x"}).encode()),
        "nan.json": ("refused", b'{"age": NaN}'),
        "infinity.json": ("refused", b'{"age": Infinity}'),
        "duplicate_key.json": ("refused", b'{"age": 50, "age": 60}'),
        "deep.json": ("refused", b"[" * 50_000 + b"]" * 50_000),
        "deep_value.json": ("refused", b'{"age": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"),
        "huge_int.json": ("refused", b'{"age": ' + b"9" * 5000 + b"}"),
        "big_float.json": ("refused", b'{"age": 1e400}'),
        "latin1.json": ("refused", '{"sex": "männlich"}'.encode("latin-1")),
        "utf16.json": ("refused", good.decode().encode("utf-16")),
        "surrogate.json": ("refused", b'{"patient_id": "\\ud800"}'),
        "typo.json": ("refused", b'{"age": 50, "brush_alodynia": true}'),
        "not_object.json": ("refused", b"[1, 2]"),
        "empty.json": ("refused", b""),
        "truncated.json": ("refused", good[:-5]),
    }


def build(folder: Path) -> tuple[list[Case], list[Case]]:
    """Write every case into ``folder``: (file cases for validate and batch, JSON cases for predict)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for name, (kind, expect, data) in csv_cases().items():
        path = folder / name
        path.write_bytes(data)
        files.append(Case(name, kind, expect, path))
    files.extend(parquet_cases(folder))
    records = []
    for name, (expect, data) in json_cases().items():
        path = folder / name
        path.write_bytes(data)
        records.append(Case(name, "json", expect, path))
    return files, records


if __name__ == "__main__":
    files, records = build(Path(sys.argv[1] if len(sys.argv) > 1 else "corpus"))
    for case in [*files, *records]:
        print(f"{case.kind:10} {case.expect:8} {case.name}")
