"""Same answers as before: every daily and report type through ``read_typed`` against what the
lxml typed reader (before the native pass read these types) answered for the same files.

``tests/typed_golden/files/`` holds each daily type's example (``tests/daily_files``) and a KPP,
forløpsmelding, XPR_VTK and NPR-melding-TSB file from the synth's writers, each clean and mutated
one way (truncated, an unknown attribute or element, a DOCTYPE, another namespace, a duplicated
record, no records, MsgInfo/Type of another type, ISO-8859-1, bytes not of the declared
encoding, an undeclared entity, 300 levels of nesting, text among the records, no or two
Melding, no or a bad technical contact, a fødselsnummer in an error, an amount with three
decimals, a timestamp with a zone and 24:00, one the register cannot store);
``expected.json.gz`` is what the lxml reader gave for each (``README.md``): the type, the
Melding's attributes, the record count, the errors and warnings with their lines and elements,
the technical contacts and every table (schema, rows).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest

from npr_pipeline.intake.reasons import Reason
from npr_pipeline.intake.typed_reader import read_typed

GOLDEN = Path(__file__).parent / "typed_golden"
EXPECTED = json.loads(gzip.decompress((GOLDEN / "expected.json.gz").read_bytes()))
CONTEXT = {"submission_id": "S-1", "unit": "4201115"}
# Deliberate differences, all on files rejected either way, in the words only (code, line,
# element and severity are the same): text or an unknown element among the records is told in
# the words of libxml2's validator, which the monthly reader uses too (the lxml reader had its
# own); a syntax error keeps the wording of libxml2's SAX2 parser after "Parser:" (lxml reworded
# a few: "Invalid bytes in character encoding", no "line N"), as the monthly reader does.
VALIDATOR_WORDS = ("-text.xml", "-entity.xml", "-unknown.xml")
SYNTAX = {"truncated", "not_xml", "encoding_error", "entity_forbidden"}


def _reasons(found: list[Reason], expected: list[dict[str, object]], name: str) -> None:
    """The reasons as before; where the words differ on purpose, everything but the words."""
    as_json = [r.as_json() | {"severity": r.severity} for r in found]
    words = name.endswith(VALIDATOR_WORDS) or any(r["code"] in SYNTAX for r in expected)
    if not words:
        assert as_json == expected
        return
    assert [{**r, "message": None} for r in as_json] == [{**r, "message": None} for r in expected]
    for new, old in zip(found, expected, strict=True):
        if old["code"] in SYNTAX:
            head = str(old["message"]).split("Parser:")[0]
            assert new.message.startswith(head + "Parser: ")
        else:
            assert "Element '{http://www.npr.no/xmlstds/58_0_1_" in new.message


def _table(table: pa.Table) -> dict[str, object]:
    rows = json.loads(json.dumps(table.to_pylist(), default=str))
    return {"schema": [f"{f.name}:{f.type}" for f in table.schema], "rows": rows}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_typed_reader_answers_as_before(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.decompress((GOLDEN / "files" / f"{name}.gz").read_bytes()))
    found = read_typed(path, CONTEXT)
    expected = EXPECTED[name]
    kind = [found.message.kind, found.message.version] if found.message else None
    assert kind == expected["message"]
    assert found.header_type == expected["header_type"]
    assert found.attrs == expected["attrs"]
    _reasons(found.errors, expected["errors"], name)
    assert [w.as_json() | {"severity": w.severity} for w in found.warnings] == expected["warnings"]
    assert found.contacts == expected["contacts"]
    assert {k: _table(t) for k, t in found.tables.items()} == expected["tables"]
    assert found.records == expected["records"]


def test_the_golden_set_covers_every_daily_and_report_type() -> None:
    kinds = {tuple(v["message"])[0] for v in EXPECTED.values() if v["message"] and not v["errors"]}
    assert kinds == {"kontakt", "henvisning", "pasient", "ident", "avslutning", "enhet", "kpp",
                     "forlop", "vtk", "tsb"}  # fmt: skip
