"""The message types of issue 14 as data: NPR_KPP, the forløpsmelding, XPR_VTK and NPR-melding-TSB.

Each type is a folder (schema.xsd + mapping.yaml) read by the one generic reader. The
hand-written files in ``tests/type_files/`` hold one message of each type; the reader must give
exactly their rows (checked by hand against the files), each type's characteristic defects must
be refused with their reason, the synthetic generators must write files that read back to the
truth they came from, and our KPP files must also be valid against the register's own KPP schema.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from lxml import etree

from npr_pipeline import reference, schema_docs
from npr_pipeline.envelope import NPR_PRODUCTION, Party, close_envelope, open_envelope
from npr_pipeline.intake.lexical import LexicalError, xs_decimal
from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.messages import (
    MappingError,
    all_types,
    by_message_type,
    get,
    load,
    reaches_production,
    reception_phase,
)
from npr_pipeline.schemas import hardened_parser
from npr_pipeline.synth import run as synth_run
from npr_pipeline.synth.coercion import write_decisions
from npr_pipeline.synth.generate import generate_unit_year
from npr_pipeline.synth.kpp import write_kpp
from npr_pipeline.synth.model import UnitInfo, UnitYear
from npr_pipeline.synth.pathways import write_pathways
from npr_pipeline.synth.tsb import write_tsb

FILES = Path(__file__).resolve().parent / "type_files"
_SHARED = [Path(__file__).resolve().parents[n] / "shared" for n in (2, 3)]
REAL_KPP = next(
    (p / "reference/npr-kpp-58" for p in _SHARED if p.exists()),
    _SHARED[0] / "reference/npr-kpp-58",
)
needs_real_kpp = pytest.mark.skipif(
    not REAL_KPP.exists(), reason="the register's KPP schema (../shared/reference) not present"
)
NEW = {
    "kpp": "NPR_KPP",
    "forlop": "NPR_FORLOP",
    "vtk": "XPR_VTK",
    "tsb": "NPR_TSB",
}
APRIL = (date(2026, 1, 1), date(2026, 4, 30))


def _rows(table: pa.Table, *columns: str) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in table.to_pylist()]


def _variant(tmp_path: Path, kind: str, old: str, new: str) -> Path:
    text = (FILES / f"{kind}.xml").read_text(encoding="utf-8")
    assert old in text, old
    out = tmp_path / f"{kind}-variant.xml"
    out.write_text(text.replace(old, new, 1), encoding="utf-8")
    return out


def _payload(path: Path) -> etree._Element:
    root = etree.parse(str(path), hardened_parser()).getroot()
    return next(root.iter("{*}Melding"))


# -- the folders --------------------------------------------------------------------------------


def test_the_new_types_are_folders() -> None:
    for kind, code in NEW.items():
        mtype = get(kind, "58.0.1")
        assert mtype.message_type == code
        assert by_message_type(code) is mtype
        assert mtype.namespace == f"http://www.npr.no/xmlstds/58_0_1_{kind}"
        assert mtype.schema() is mtype.schema()


@pytest.mark.parametrize("kind", sorted(NEW))
def test_every_mapped_column_is_a_documented_attribute(kind: str) -> None:
    """Mapping and schema agree, and every class and attribute is documented (docs page)."""
    mtype = get(kind, "58.0.1")
    classes = schema_docs.read_classes(mtype.schema_path)
    for cls in classes.values():
        assert cls.label and cls.doc, cls.name
        assert all(a.label and a.doc for a in cls.attributes), cls.name
    for spec in mtype.tables:
        attrs = {a.name: a for a in classes[spec.element[-1]].attributes}
        assert {c for c, _ in spec.columns} <= set(attrs), spec.name
        assert all(attrs[k].required for k in spec.key if k in attrs), spec.name


def test_the_index_page_lists_every_type() -> None:
    index = schema_docs.pages()["index.md"]
    for mtype in all_types():
        assert f"[{mtype.kind}.md]({mtype.kind}.md)" in index
        assert f"{mtype.kind}.md" in schema_docs.pages()
    assert "## Calendar" in schema_docs.pages()["forlop.md"]
    assert "once per file" in schema_docs.pages()["kpp.md"]


# -- hand-checked rows --------------------------------------------------------------------------


def test_kpp_rows() -> None:
    result = read_typed(FILES / "kpp.xml", {"unit": "4201115"})
    assert result.ok, result.errors
    assert result.header_type == "NPR_KPP" and result.records == 2
    assert result.attrs["fraDatoPeriode"] == "2026-01-01"
    tables = result.tables
    assert _rows(tables["kpp_patients"], "unit", "pasientNr", "line") == [
        ("4201115", "P-0001", 5),
        ("4201115", "P-0002", 12),
    ]
    assert tables["kpp_episodes"].schema.field("total").type == pa.decimal128(18, 2)
    assert _rows(tables["kpp_episodes"], "pasientNr", "episodeID", "drg", "total", "line") == [
        ("P-0001", "E-1", "00A", Decimal("1.24"), 6),
        ("P-0001", "E-2", None, Decimal("5.24"), 10),  # " 5.240 ": collapsed, exact
        ("P-0002", "E-3", "05F", Decimal("10.12"), 13),
    ]
    assert _rows(tables["kpp_costs"], "pasientNr", "episodeID", "kostnadKode", "kostnad") == [
        ("P-0001", "E-1", "00A1", Decimal("0.12")),
        ("P-0001", "E-1", "01B1", Decimal("1.12")),
        ("P-0002", "E-3", "10K1", Decimal("-1.00")),  # a correction may be negative
        ("P-0002", "E-3", "11L1", Decimal("11.12")),
    ]


def test_forlop_rows() -> None:
    result = read_typed(FILES / "forlop.xml")
    assert result.ok, result.errors
    tables = result.tables
    assert _rows(tables["pathways"], "forlopID", "pasientNr", "reshID", "forlopstype") == [
        ("F-1", "P-0001", "4201115", "PV"),
        ("F-2", "P-0002", "4201116", "RB"),
    ]
    assert _rows(tables["pathway_events"], "forlopID", "hendelseNr", "hendelse", "dato") == [
        ("F-1", 1, "S", date(2026, 1, 12)),
        ("F-1", 2, "E", date(2026, 3, 2)),
        ("F-1", 3, "A", date(2026, 4, 20)),
        ("F-2", 1, "S", date(2026, 4, 2)),  # a zone does not move the day
    ]


def test_vtk_rows() -> None:
    result = read_typed(FILES / "vtk.xml")
    assert result.ok, result.errors
    decisions = result.tables["coercion_decisions"]
    columns = ("vedtakID", "pasientNr", "vedtakstype", "vedtaksdato", "gyldigFra", "gyldigTil")
    assert _rows(decisions, *columns) == [
        ("V-1", "P-0001", "01", date(2026, 4, 3), date(2026, 4, 3), date(2026, 4, 13)),
        ("V-2", "P-0001", "02", date(2026, 4, 13), date(2026, 4, 13), None),
        ("V-3", "P-0002", "04", date(2026, 4, 20), date(2026, 4, 21), date(2026, 5, 20)),
    ]


def test_tsb_rows() -> None:
    result = read_typed(FILES / "tsb.xml")
    assert result.ok, result.errors
    tables = result.tables
    assert _rows(tables["tsb_episodes"], "episodeID", "boforhold", "hovedinntekt") == [
        ("E-1", "4", "3"),
        ("E-2", None, None),
    ]
    columns = ("episodeID", "rusmiddelNr", "rusmiddel", "hyppighet", "injisert")
    assert _rows(tables["tsb_substances"], *columns) == [
        ("E-1", 1, "03", "4", "1"),
        ("E-1", 2, "07", "3", None),
    ]


# -- characteristic defects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "old", "new", "says"),
    [
        # money is never rounded in silence: three decimals fail the schema
        ("kpp", 'kostnad="0.12"', 'kostnad="0.125"', "fractionDigits"),
        ("kpp", 'total="1.24"', 'total="1,24"', "belop"),
        (
            "kpp",
            "</Institusjon>",
            '</Institusjon><Institusjon institusjonID="999888777">'
            '<Objektholder pasientNr="P-9"/></Institusjon>',
            "Institusjon",  # one sender per file
        ),
        ("kpp", 'kostnadKode="01B1"', 'kostnadKode="00A1"', "TjenesteKPPKode"),
        ("forlop", 'forlopstype="PV"', 'forlopstype="XX"', "forlopstype"),
        ("forlop", 'hendelse="E"', 'hendelse="X"', "'hendelse'"),
        ("forlop", 'hendelseNr="2"', 'hendelseNr="1"', "HendelseNr"),
        ("forlop", ' dato="2026-01-12"', "", "dato"),
        ("vtk", 'vedtakstype="01"', 'vedtakstype="99"', "vedtakstype"),
        ("vtk", ' vedtaksdato="2026-04-03"', "", "vedtaksdato"),
        ("vtk", 'gyldigTil="2026-04-13"', 'gyldigTil="13.04.2026"', "gyldigTil"),
        ("tsb", 'injisert="1"', 'injisert="3"', "'injisert'"),
        ("tsb", ' reshID="4201115" boforhold', " boforhold", "reshID"),
        ("tsb", 'rusmiddel="03"', 'rusmiddel="3"', "rusmiddel"),
    ],
)
def test_a_defect_is_refused_with_its_reason(
    tmp_path: Path, kind: str, old: str, new: str, says: str
) -> None:
    result = read_typed(_variant(tmp_path, kind, old, new))
    assert not result.ok and result.tables == {}
    assert {e.code for e in result.errors} == {"schema_error"}
    assert any(says in e.message for e in result.errors), [e.message for e in result.errors]


def test_a_key_repeated_anywhere_in_the_file_is_refused(tmp_path: Path) -> None:
    """The mapping's ``unique`` holds for the whole file: it is the schema's xs:unique, which the
    streaming validator checks over the whole Melding (no batches)."""
    path = _variant(tmp_path, "kpp", 'episodeID="E-3"', 'episodeID="E-1"')
    result = read_typed(path)
    assert not result.ok and result.tables == {}
    assert [(e.code, e.line) for e in result.errors] == [("schema_error", 13)]
    assert "EpisodeKPPP_ID" in result.errors[0].message


def test_a_payload_that_is_not_its_header_type_is_refused(tmp_path: Path) -> None:
    path = _variant(tmp_path, "vtk", 'Type V="XPR_VTK"', 'Type V="NPR_FORLOP"')
    result = read_typed(path)
    assert [e.code for e in result.errors] == ["payload_mismatch"]


def test_decimal_reads_exactly() -> None:
    assert xs_decimal(" 12.50 ") == Decimal("12.50")
    assert xs_decimal("-.5") == Decimal("-0.50")
    assert xs_decimal("7") == Decimal("7.00")
    for bad in ("1.005", "1e3", "12,5", "1" * 17 + ".00", ""):
        with pytest.raises(LexicalError):
            xs_decimal(bad)


# -- the register's own KPP schema --------------------------------------------------------------


def _real_kpp() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(REAL_KPP / "NPR(kpp).xsd"), hardened_parser()))


@needs_real_kpp
def test_our_kpp_files_are_valid_against_the_registers_schema(tmp_path: Path) -> None:
    real = _real_kpp()
    assert real.validate(_payload(FILES / "kpp.xml")), str(real.error_log)
    unit_year = _unit_year("somatic", "050")
    path = write_kpp(tmp_path, unit_year, APRIL, lopenr=3, seed=5)
    assert path is not None
    assert real.validate(_payload(path)), str(real.error_log)


@needs_real_kpp
def test_the_registers_sample_is_refused_by_our_stricter_schema(tmp_path: Path) -> None:
    """The public sample (three institutions, an 18-digit lopenr) is valid for the register and
    not for us: one Institusjon per file and lopenr <= 999999999, as docs/messages/kpp.md says."""
    sample = etree.parse(str(REAL_KPP / "TestMelding-kpp-53_1_3.xml"), hardened_parser())
    assert _real_kpp().validate(sample)
    unit = Party("Eksempel", her="8000001", orgnr="900000000")
    head = open_envelope("NPR_KPP", "m-1", datetime(2026, 5, 2), unit, NPR_PRODUCTION, "Kostnad")
    body = etree.tostring(sample.getroot(), encoding="unicode")
    path = tmp_path / "sample.xml"
    path.write_text(head + body + close_envelope(), encoding="utf-8")
    details = " ".join(e.message for e in read_typed(path).errors)
    assert "lopenr" in details and "Institusjon" in details


# -- synthetic files ----------------------------------------------------------------------------


def _unit_year(sector: str, fagomrade: str) -> UnitYear:
    row = {"reshID": "4201115", "orgnr": "999888777", "herID": "8000001",
           "name": "Helse Eksempel HF & Co", "rhf": "HSO", "komnr": "0301"}  # fmt: skip
    unit = UnitInfo.of(row, sector=sector, fagomrade=fagomrade, size_weight=20.0)
    fag = set(reference.code_list("fagomrade"))
    return generate_unit_year(unit, 2026, 4, 7, 40, synth_run._catchment(), fag)


def test_synth_kpp_is_the_cost_of_every_episode_of_the_period(tmp_path: Path) -> None:
    unit_year = _unit_year("somatic", "050")
    path = write_kpp(tmp_path, unit_year, APRIL, lopenr=3, seed=5)
    assert path is not None and path.name == "4201115_kpp_2026-01-01_2026-04-30.xml"
    result = read_typed(path)
    assert result.ok, result.errors[:3]
    assert "Kontaktperson" not in path.read_text(encoding="utf-8")  # as the register's schema
    episodes = result.tables["kpp_episodes"].to_pylist()
    ended = {e.episode_id for p in unit_year.patients for e in p.episodes if e.end.month <= 4}
    assert {e["episodeID"] for e in episodes} == ended
    costs: dict[str, Decimal] = {}
    for row in result.tables["kpp_costs"].to_pylist():
        costs[row["episodeID"]] = costs.get(row["episodeID"], Decimal(0)) + row["kostnad"]
    assert all(e["total"] == costs[e["episodeID"]] for e in episodes)
    # the same seed writes the same file; another period is another file
    again = write_kpp(tmp_path / "again", unit_year, APRIL, lopenr=3, seed=5)
    assert again is not None and again.read_bytes() == path.read_bytes()


def test_synth_pathways_decisions_and_tsb_read_back(tmp_path: Path) -> None:
    mental = _unit_year("mental_health", "320")
    tsb = _unit_year("tsb", "360")
    pathways = write_pathways(tmp_path, mental, APRIL, 1, 7)
    decisions = write_decisions(tmp_path, mental, APRIL, 1, 7)
    report = write_tsb(tmp_path, tsb, APRIL, 1, 7)
    assert pathways and decisions and report
    for path in (pathways, decisions, report):
        result = read_typed(path)
        assert result.ok, (path.name, result.errors[:3])
        assert 'typeKontaktperson="1"' in path.read_text(encoding="utf-8")
    events = read_typed(pathways).tables["pathway_events"].to_pylist()
    starts = [e for e in events if e["hendelse"] == "S"]
    assert len(starts) == read_typed(pathways).tables["pathways"].num_rows
    assert all(APRIL[0] <= e["dato"] <= APRIL[1] for e in events)
    made = read_typed(decisions).tables["coercion_decisions"].to_pylist()
    assert made and all(d["gyldigFra"] <= d["gyldigTil"] for d in made)
    tsb_rows = read_typed(report).tables["tsb_episodes"].to_pylist()
    ended = {e.episode_id for p in tsb.patients for e in p.episodes if e.end.month <= 4}
    assert {r["episodeID"] for r in tsb_rows} == ended
    # a somatic unit has none of these
    somatic = _unit_year("somatic", "050")
    assert write_pathways(tmp_path, somatic, APRIL, 1, 7) is None
    assert write_decisions(tmp_path, somatic, APRIL, 1, 7) is None
    assert write_tsb(tmp_path, somatic, APRIL, 1, 7) is None


# -- the forløpsmelding's trial period ----------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "phase"),
    [
        (date(2025, 12, 31), "not_open"),
        (date(2026, 1, 1), "trial"),
        (date(2026, 4, 30), "trial"),
        (date(2026, 5, 1), "start"),
        (date(2026, 5, 16), "start"),
        (date(2026, 5, 31), "start"),
        (date(2026, 6, 1), "ordinary"),
        (date(2027, 1, 1), "ordinary"),
    ],
)
def test_forlop_reaches_production_from_june_2026(received: date, phase: str) -> None:
    assert reception_phase("NPR_FORLOP", received) == phase
    assert reaches_production("NPR_FORLOP", received) is (phase == "ordinary")
    assert reaches_production(get("forlop", "58.0.1"), received) is (phase == "ordinary")


def test_types_without_a_calendar_always_reach_production() -> None:
    for code in ("NPR_KPP", "XPR_VTK", "NPR_TSB", "NPR_KONTAKT"):
        assert reaches_production(code, date(2026, 1, 1))
    with pytest.raises(ValueError, match="unknown message type 'NPR_NOPE'"):
        reaches_production("NPR_NOPE", date(2026, 6, 1))


@pytest.mark.parametrize(
    ("calendar", "message"),
    [
        ("{validation_from: 2026-01-01}", "exactly"),
        (
            "{validation_from: 2026-01-01, trial_until: 2026-04-30, start_deadline: 2026-07-16,"
            " production_from: 2026-06-01}",
            "out of order",
        ),
        (
            "{validation_from: 2026-01-01, trial_until: april, start_deadline: 2026-05-16,"
            " production_from: 2026-06-01}",
            "dates",
        ),
    ],
)
def test_a_bad_calendar_is_refused(tmp_path: Path, calendar: str, message: str) -> None:
    folder = tmp_path / "demo" / "58_0_1"
    folder.mkdir(parents=True)
    (folder / "mapping.yaml").write_text(
        "message_type: X\ndisplay_name: X\nversion: 58.0.1\nroute: report\ntitle: t\nintro: i\n"
        "record: K\n"
        f"calendar: {calendar}\n"
        "tables: [{name: t, element: K, key: [a], columns: {a: string}}]\n",
        encoding="utf-8",
    )
    with pytest.raises(MappingError, match=message):
        load(folder)
