"""Same rows as before: the ord/ide reader against golden output of the hand-written reader.

``tests/reader_golden/`` holds synthetic monthly files (``npr synth``: six units, data years
2025 and 2026, UTF-8 and ISO-8859-1, with the synth's injected defects: truncated files,
unknown senders, a schema violation, a patient without ident) and, under ``expected/``, what
the hand-written ord/ide reader (``_extract_patient``, before the mapping-driven extraction
replaced it) produced for each: every lake table's rows, the reasons with their lines and
elements, and the counts. The mapping-driven reader must give exactly the same, table by
table; see ``tests/reader_golden/README.md`` for how the fixtures were made.
"""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.intake.reader import read_submission
from npr_pipeline.messages import get, of_route
from npr_pipeline.registry import read_registry_csv
from npr_pipeline.store.lake import schema_of

GOLDEN = Path(__file__).parent / "reader_golden"
EXPECTED = GOLDEN / "expected"
# When the files were received: inside each data year's reporting window.
RECEIVED = {"y2025": date(2025, 2, 10), "y2026": date(2026, 3, 10)}
SYNTAX_REASONS = {"truncated", "not_xml", "encoding_error", "entity_forbidden"}


def read_all(work: Path) -> tuple[dict[str, pa.Table], dict[str, dict[str, object]]]:
    """Every fixture file through the reader: the staged rows of each table (with the file's
    name as a first column) and, per file, its reasons and counts."""
    rows: dict[str, list[pa.Table]] = {}
    results: dict[str, dict[str, object]] = {}
    for year_dir in sorted(p for p in GOLDEN.iterdir() if p.name in RECEIVED):
        index = RegistryIndex(read_registry_csv(year_dir / "registry.csv"))
        for packed in sorted(year_dir.glob("*.xml.gz")):
            name = packed.name.removesuffix(".gz")
            path = work / name
            path.write_bytes(gzip.decompress(packed.read_bytes()))
            sid = path.stem
            staging = work / "staging" / sid
            read = read_submission(path, index, staging, sid, RECEIVED[year_dir.name], 1 << 30)
            results[name] = {
                "reasons": [r.as_json() | {"severity": r.severity} for r in read.reasons],
                "gate": [r.as_json() | {"severity": r.severity} for r in read.gate.reasons],
                "patients": read.patients,
                "episodes": read.episodes,
                "version": read.version,
                "msg": read.msg,
                "year": read.year,
                "lopenr": read.lopenr,
                "contacts": read.contacts,
                "tables": sorted(read.staged),
            }
            for table, staged in sorted(read.staged.items()):
                found = pq.read_table(staged)
                found = found.add_column(0, "file", pa.array([name] * found.num_rows, pa.string()))
                rows.setdefault(table, []).append(found)
    return {t: pa.concat_tables(parts) for t, parts in rows.items()}, results


@pytest.fixture(scope="module")
def read_back(tmp_path_factory: pytest.TempPathFactory):
    return read_all(tmp_path_factory.mktemp("golden"))


def test_the_fixtures_cover_what_the_reader_must_keep() -> None:
    """Both versions, both encodings, accepted and rejected files: the comparison means
    something only if the fixtures hold all of these."""
    expected = json.loads((EXPECTED / "results.json").read_text())
    assert {r["version"] for r in expected.values()} >= {"57.0.1", "58.0.1"}
    assert {r["msg"] for r in expected.values()} == {"ord", "ide", None}
    codes = {found["code"] for r in expected.values() for found in r["reasons"] + r["gate"]}
    assert {"schema_error", "unknown_sender"} <= codes
    assert any(c.startswith("xml_") or c == "truncated" for c in codes), codes
    texts = [gzip.decompress(p.read_bytes())[:60] for p in GOLDEN.glob("*/*.xml.gz")]
    assert any(b"ISO-8859-1" in t for t in texts) and any(b"UTF-8" in t for t in texts)
    assert all(r["tables"] for r in expected.values() if not r["reasons"] + r["gate"])


def test_same_reasons_and_counts_per_file(read_back) -> None:
    """Everything as the fixtures hold it but one count: the hand-written reader extracted
    patients in validated chunks of 256 and counted those it had extracted when a truncation
    stopped it (256 in a truncated ide); the native pass (one pass, no chunks) extracts nothing
    from a file it rejects, so a rejected file counts 0 patients, as a schema-invalid file
    always did."""
    _, results = read_back
    expected = json.loads((EXPECTED / "results.json").read_text())
    for found in expected.values():
        if {r["code"] for r in found["reasons"]} & SYNTAX_REASONS:
            found["patients"] = 0
    assert results == expected


@pytest.mark.parametrize(
    "table",
    ["patients", "departments", "episodes", "diagnoses", "procedures", "referrals",
     "postponements", "idents"],
)  # fmt: skip
def test_same_rows_table_by_table(read_back, table: str) -> None:
    tables, _ = read_back
    expected = _in_delta_units(pa.ipc.open_file(EXPECTED / f"{table}.arrow").read_all())
    assert expected.num_rows > 0
    assert tables[table].schema == expected.schema
    assert tables[table].to_pylist() == expected.to_pylist()


def _in_delta_units(expected: pa.Table) -> pa.Table:
    """The fixtures hold timestamps in milliseconds, as the sinks wrote them at 3e43543; since
    the monthly lake moved to Delta the sinks write microseconds (the unit Delta stores). The
    cast is exact (ms to us), so every instant is still compared."""
    fields = [
        pa.field(f.name, pa.timestamp("us"), f.nullable) if pa.types.is_timestamp(f.type) else f
        for f in expected.schema
    ]
    return expected.cast(pa.schema(fields, expected.schema.metadata))


@pytest.mark.parametrize(("kind", "version"), [(t.kind, t.version) for t in of_route("monthly")])
def test_the_mapping_gives_the_lake_tables(kind: str, version: str) -> None:
    """The folders' mappings and the lake's table schemas (``store/lake.py``, which the
    sinks write) describe the same columns and types: neither can drift from the other."""
    mtype = get(kind, version)
    assert mtype.route == "monthly"
    for spec in mtype.tables:
        lake = schema_of(spec.name)
        assert spec.arrow_schema(("submission_id", "unit")) == pa.schema(
            [f for f in lake if f.name != "year"]
        )
        assert spec.vault == (spec.name == "idents")  # fødselsnummer only in the vault
