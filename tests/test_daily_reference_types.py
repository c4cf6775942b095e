"""The daily patient and department messages (NPR_PASIENT, NPR_ENHET; issue 13).

They give every monthly lake table a daily source: the hand-written files read to exactly their
rows through the real reader (lxml, XSD validation), the columns are those of the monthly
``ord``'s ``Pasient`` and ``Enhet`` with the same schema types, and schema-invalid values are
refused with the schema's reason and no rows.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
import yaml

from npr_pipeline import schema_docs
from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.messages import get
from npr_pipeline.store.lake import TABLES

FILES = Path(__file__).resolve().parent / "daily_files"
CONTEXT = {"submission_id": "s-1", "unit": "4201115"}
EVENT = ("hendelsesstatus", "endretTidspunkt")


def _rows(path: Path, table: str, *columns: str) -> list[tuple]:
    result = read_typed(path, CONTEXT)
    assert result.ok, result.errors
    return [tuple(row[c] for c in columns) for row in result.tables[table].to_pylist()]


def test_pasient_rows() -> None:
    rows = _rows(
        FILES / "pasient.xml",
        "daily_patients",
        "unit",
        "pasientNr",
        *EVENT,
        "kjonn",
        "fodselsar",
        "komNrHjem",
    )
    assert rows == [
        ("4201115", "P-0001", "N", datetime(2026, 3, 2, 8), "2", 1961, "0301"),
        # +00:00 is 09:00 in Oslo (winter time)
        ("4201115", "P-0002", "M", datetime(2026, 3, 4, 9), "1", 1962, "4601"),
        ("4201115", "P-0003", "T", datetime(2026, 3, 4, 9), None, None, "0301"),
        ("4201115", "P-0004", "C", datetime(2026, 3, 4, 10), None, None, None),
    ]


def test_enhet_rows() -> None:
    rows = _rows(
        FILES / "enhet.xml",
        "daily_departments",
        "reshID",
        *EVENT,
        "navn",
        "sektor",
        "isfRefusjon",
        "nace",
    )
    assert rows == [
        ("4201115", "N", datetime(2026, 1, 1), "Ortopedisk avdeling", "642", "1", "86.102"),
        (
            "42011151",
            "M",
            datetime(2026, 1, 2, 7, 30),
            "Poliklinikk & dagbehandling",
            None,
            None,
            None,
        ),  # fmt: skip
        ("42011152", "C", datetime(2026, 1, 3, 7, 30), None, None, None, None),
    ]


@pytest.mark.parametrize(
    ("kind", "record", "monthly_table"),
    [("pasient", "Pasient", "patients"), ("enhet", "Enhet", "departments")],
)
def test_same_attributes_and_types_as_the_monthly_record(
    kind: str, record: str, monthly_table: str
) -> None:
    """The daily record is the monthly ord's, with the event fields: one meaning per name."""
    daily = schema_docs.read_classes(get(kind, "58.0.1").schema_path)[record]
    monthly = schema_docs.read_classes(get("ord", "58.0.1").schema_path)[record]
    daily_types = {a.name: a.type for a in daily.attributes}
    monthly_types = {a.name: a.type for a in monthly.attributes}
    key = get(kind, "58.0.1").tables[0].key[0]
    assert set(daily_types) == {*monthly_types, *EVENT} | {key}
    assert {n: daily_types[n] for n in monthly_types} == monthly_types
    # every column of the monthly lake table but the lineage has a source in the daily record
    lake = {name for name, _ in TABLES[monthly_table]} - {"line"}
    assert lake <= set(daily_types)


@pytest.mark.parametrize(("kind", "table"), [("pasient", "patients"), ("enhet", "departments")])
def test_the_mapping_says_where_the_rows_go_in_the_state(kind: str, table: str) -> None:
    raw = yaml.safe_load(get(kind, "58.0.1").mapping_path.read_text(encoding="utf-8"))
    assert [t["state"] for t in raw["tables"]] == [{"table": table}]


@pytest.mark.parametrize(
    ("kind", "old", "new", "mentions"),
    [
        ("pasient", 'kjonn="2"', 'kjonn="3"', "kjonn"),
        ("pasient", 'fodselsar="1961"', 'fodselsar="61"', "fodselsar"),
        ("pasient", 'komNrHjem="4601"', 'komNrHjem="46011"', "komNrHjem"),
        ("pasient", 'pasientNr="P-0001" ', "", "pasientNr"),
        ("enhet", 'nace="86.102"', 'nace="86102"', "nace"),
        ("enhet", 'isfRefusjon="1"', 'isfRefusjon="ja"', "isfRefusjon"),
        ("enhet", 'hendelsesstatus="C"', 'hendelsesstatus="D"', "hendelsesstatus"),
    ],
)
def test_schema_invalid_file_is_rejected(
    tmp_path: Path, kind: str, old: str, new: str, mentions: str
) -> None:
    text = (FILES / f"{kind}.xml").read_text(encoding="utf-8")
    assert old in text, old
    path = tmp_path / f"{kind}.xml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    result = read_typed(path, CONTEXT)
    assert result.tables == {}
    assert {e.code for e in result.errors} == {"schema_error"}
    assert mentions in " ".join(e.message for e in result.errors)
