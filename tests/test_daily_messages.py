"""The daily message family (issue 13): schemas, mappings and the reader driven by them.

The hand-written files in ``tests/daily_files/`` hold one message of each type with N, M, T and
C events and zoned times; the reader must give exactly their rows. Hostile variants of them must
fail the schema, and a file with any error gives its reasons and no rows.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from lxml import etree

from npr_pipeline import messages, schema_docs
from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.messages import MappingError, all_types, by_namespace, get, load, monthly_types
from npr_pipeline.schemas import MSGHEAD_NS, hardened_parser

FILES = Path(__file__).resolve().parent / "daily_files"
# ../shared beside the checkout; a worktree under /work/wt/ finds it one level further up
_SHARED = [Path(__file__).resolve().parents[n] / "shared" for n in (2, 3)]
MSGHEAD_XSD = next(
    (p / "reference/kith-msghead/MsgHead-v1_2.xsd" for p in _SHARED if p.exists()),
    _SHARED[0] / "reference/kith-msghead/MsgHead-v1_2.xsd",
)
KINDS = ("kontakt", "henvisning", "ident", "avslutning", "pasient", "enhet")
CONTEXT = {"submission_id": "s-1", "unit": "4201115"}
# The attribute types a mapping column type may read (the schema bounds them so all convert).
COMPATIBLE = {
    "date": {"dato"},
    "timestamp": {"datoTid"},
    "int": {"nummer", "antall", "lopenr", "aarstall"},
}


def _payload(path: Path) -> etree._Element:
    root = etree.parse(str(path), hardened_parser()).getroot()
    return next(root.iter("{*}Melding"))


def _variant(tmp_path: Path, kind: str, old: str, new: str, count: int = 1) -> Path:
    text = (FILES / f"{kind}.xml").read_text(encoding="utf-8")
    assert old in text, old
    out = tmp_path / f"{kind}-variant.xml"
    out.write_text(text.replace(old, new, count), encoding="utf-8")
    return out


def _rows(table: pa.Table, *columns: str) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in table.to_pylist()]


# -- the registry of types ----------------------------------------------------------------------


def test_the_six_daily_types_are_folders() -> None:
    found = {(t.kind, t.version, t.message_type) for t in all_types() if t.kind in KINDS}
    assert found == {
        ("kontakt", "58.0.1", "NPR_KONTAKT"),
        ("henvisning", "58.0.1", "NPR_HENVISNING"),
        ("ident", "58.0.1", "NPR_IDENT"),
        ("avslutning", "58.0.1", "NPR_AVSLUTNING"),
        ("pasient", "58.0.1", "NPR_PASIENT"),
        ("enhet", "58.0.1", "NPR_ENHET"),
    }
    for mtype in all_types():
        folder = mtype.version.replace(".", "_")
        assert mtype.namespace == f"http://www.npr.no/xmlstds/{folder}_{mtype.kind}"
        assert by_namespace(mtype.namespace) is mtype
        assert get(mtype.kind, mtype.version) is mtype
        assert mtype.schema() is mtype.schema()  # compiled once


def test_daily_types_are_not_on_the_monthly_route() -> None:
    """The monthly route (ord and ide, gated as a pair) is what the folders say it is; a daily
    type's namespace is its own type, never a monthly one."""
    assert monthly_types() == ("NPR_IDE", "NPR_ORD")
    kontakt = by_namespace("http://www.npr.no/xmlstds/58_0_1_kontakt")
    assert kontakt is not None and kontakt.route == "event"


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="known: avslutning 58.0.1"):
        get("nosuch", "58.0.1")


@pytest.mark.parametrize("kind", KINDS)
def test_every_mapped_column_is_an_attribute_of_its_element(kind: str) -> None:
    """The mapping names attributes the schema declares, with a type that converts."""
    mtype = get(kind, "58.0.1")
    classes = schema_docs.read_classes(mtype.schema_path)
    for spec in mtype.tables:
        cls = classes[spec.element[-1]]
        attrs = {a.name: a for a in cls.attributes}
        for column, kind_ in spec.columns:
            assert column in attrs, f"{spec.name}.{column} is not an attribute of {cls.name}"
            if kind_ in COMPATIBLE:
                assert attrs[column].type in COMPATIBLE[kind_], (spec.name, column)
            else:
                assert attrs[column].type not in {"dato", "datoTid", "nummer", "antall"}
        # every record carries its key and the event fields
        if spec.parent is None:
            required = {a.name for a in cls.attributes if a.required}
            assert {*spec.key, "hendelsesstatus", "endretTidspunkt"} <= required


@pytest.mark.parametrize("kind", KINDS)
def test_every_record_and_attribute_is_documented(kind: str) -> None:
    classes = schema_docs.read_classes(get(kind, "58.0.1").schema_path)
    for cls in classes.values():
        assert cls.label and cls.doc, cls.name
        for attr in cls.attributes:
            assert attr.label and attr.doc, f"{cls.name}/@{attr.name}"


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ("tables: [{name: t, element: K, key: [a], columns: {a: float}}]", "unknown type"),
        ("tables: [{name: t, element: K, key: [b], columns: {a: string}}]", "key"),
        (
            "tables: [{name: c, element: K/D, parent: p, key: [a], columns: {a: string}}]",
            "listed before",
        ),
        ("tables: [{name: t, element: X, key: [a], columns: {a: string}}]", "record element"),
        ("tables: [{name: t, element: K, key: [a], columns: {a: {type: string, from: X/Y/@a}}}]",
         "from must be"),
        ("tables: [{name: t, element: K, key: [a], columns: {a: {type: date, from: position}}}]",
         "position is an int"),
        ("counted: nope\ntables: [{name: t, element: K, key: [a], columns: {a: string}}]",
         "counted names no table"),
    ],
)  # fmt: skip
def test_a_bad_mapping_is_refused(tmp_path: Path, mapping: str, message: str) -> None:
    folder = tmp_path / "demo" / "58_0_1"
    folder.mkdir(parents=True)
    head = "message_type: X\ndisplay_name: X\nversion: 58.0.1\ntitle: t\nintro: i\nrecord: K\n"
    (folder / "mapping.yaml").write_text(head + "route: report\n" + mapping, encoding="utf-8")
    with pytest.raises(MappingError, match=message):
        load(folder)


@pytest.mark.parametrize("route", ["", "route: daily\n"])
def test_a_mapping_declares_what_its_records_are(tmp_path: Path, route: str) -> None:
    """Event, report or monthly is said by the mapping, never guessed from its columns."""
    folder = tmp_path / "demo" / "58_0_1"
    folder.mkdir(parents=True)
    head = "message_type: X\ndisplay_name: X\nversion: 58.0.1\ntitle: t\nintro: i\nrecord: K\n"
    table = "tables: [{name: t, element: K, key: [a], columns: {a: string}}]\n"
    (folder / "mapping.yaml").write_text(head + route + table, encoding="utf-8")
    with pytest.raises(MappingError, match="route must be one of event, report, monthly"):
        load(folder)


# -- the examples validate ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_hand_written_example_validates(kind: str) -> None:
    mtype = get(kind, "58.0.1")
    xsd = mtype.schema()
    assert xsd.validate(_payload(FILES / f"{kind}.xml")), str(xsd.error_log)


@pytest.mark.skipif(not MSGHEAD_XSD.exists(), reason="reference MsgHead schema not present")
@pytest.mark.parametrize("kind", KINDS)
def test_hand_written_envelope_conforms_to_msghead(kind: str) -> None:
    msghead = etree.XMLSchema(etree.parse(str(MSGHEAD_XSD), hardened_parser()))
    root = etree.parse(str(FILES / f"{kind}.xml"), hardened_parser()).getroot()
    assert root.tag == f"{{{MSGHEAD_NS}}}MsgHead"
    content = next(root.iter(f"{{{MSGHEAD_NS}}}Content"))
    content.remove(content[0])  # the payload is checked against its own schema above
    assert msghead.validate(root), str(msghead.error_log)


# -- the reader gives exactly the rows ----------------------------------------------------------


def test_kontakt_rows() -> None:
    result = read_typed(FILES / "kontakt.xml", CONTEXT)
    assert result.ok, result.errors
    assert result.message is get("kontakt", "58.0.1")
    assert result.header_type == "NPR_KONTAKT"
    assert result.attrs["meldingstype"] == "E" and result.attrs["lopenr"] == "17"
    assert result.records == 4
    contacts = result.tables["daily_contacts"]
    assert contacts.schema.names[:2] == ["submission_id", "unit"]
    assert contacts.schema.field("endretTidspunkt").type == pa.timestamp("s")
    assert _rows(
        contacts, "kontaktID", "hendelsesstatus", "endretTidspunkt", "pasientNr", "utDatoTid"
    ) == [
        ("K-1", "N", datetime(2026, 3, 4, 10, 15), "P-0001", datetime(2026, 3, 4, 12, 0)),
        # 23:30 UTC is 00:30 the next day in Oslo (winter time, UTC+1)
        ("K-0", "M", datetime(2026, 3, 5, 0, 30), "P-0002", datetime(2026, 1, 15, 9, 30)),
        ("K-7", "T", datetime(2026, 3, 4, 11, 0), "P-0003", None),
        ("K-9", "C", datetime(2026, 3, 4, 12, 0), "P-0004", None),
    ]
    first = contacts.to_pylist()[0]
    assert first | {"line": 0} == {
        "submission_id": "s-1",
        "unit": "4201115",
        "kontaktID": "K-1",
        "hendelsesstatus": "N",
        "endretTidspunkt": datetime(2026, 3, 4, 10, 15),
        "pasientNr": "P-0001",
        "reshID": "4201115",
        "fagomrade": "050",
        "omsorgsniva": "1",
        "innmateHast": "4",
        "kontaktType": "2",
        "debitor": "1",
        "komNrHjem": "0301",
        "innDatoTid": datetime(2026, 3, 2, 8, 0),
        "utDatoTid": datetime(2026, 3, 4, 12, 0),  # +01:00 is Oslo's own winter offset
        "henvisningsperiodeID": "H-1",
        "line": 0,
    }
    assert first["line"] == 6
    assert contacts.to_pylist()[3]["reshID"] is None  # a C carries only its key
    diagnoses = result.tables["daily_contact_diagnoses"]
    assert _rows(diagnoses, "kontaktID", "hendelsesstatus", "tilstNr", "kodeNr", "kodeverk") == [
        ("K-1", "N", 1, "M161", "D"),
        ("K-1", "N", 2, "E119", "D"),
        ("K-7", "T", 3, "I10", "D"),  # a supplement: one diagnosis added to K-7
    ]
    procedures = result.tables["daily_contact_procedures"]
    assert _rows(procedures, "kontaktID", "prosedyreNr", "kodeNr", "kodeverk", "dato") == [
        ("K-1", 1, "NFB40", "K", date(2026, 3, 2))
    ]


def test_henvisning_rows_are_the_steps_of_a_wait() -> None:
    result = read_typed(FILES / "henvisning.xml", CONTEXT)
    assert result.ok, result.errors
    referrals = result.tables["daily_referrals"]
    assert _rows(
        referrals,
        "henvisningsperiodeID",
        "hendelsesstatus",
        "endretTidspunkt",
        "mottattDato",
        "vurderingsdato",
        "prioritet",
        "tjenestestart",
        "avviklingskode",
    ) == [
        ("H-1", "N", datetime(2026, 1, 5, 8), date(2026, 1, 5), None, None, None, None),
        ("H-1", "T", datetime(2026, 1, 12, 14), None, date(2026, 1, 12), "1", None, None),
        ("H-1", "T", datetime(2026, 2, 1, 9), None, None, None, None, None),
        ("H-1", "T", datetime(2026, 3, 2, 8), None, None, None, date(2026, 3, 2), "1"),
        # 08:00 at UTC+2 is 07:00 in Oslo in March (before summer time)
        ("H-2", "C", datetime(2026, 3, 3, 7), None, None, None, None, None),
    ]
    postponements = result.tables["daily_postponements"]
    assert _rows(
        postponements,
        "henvisningsperiodeID",
        "hendelsesstatus",
        "endretTidspunkt",
        "utsettelseskode",
        "utsettelsesdato",
        "utsettelseSluttdato",
    ) == [("H-1", "T", datetime(2026, 2, 1, 9), "4", date(2026, 2, 1), date(2026, 2, 14))]


def test_ident_rows() -> None:
    result = read_typed(FILES / "ident.xml", CONTEXT)
    assert result.ok, result.errors
    assert get("ident", "58.0.1").table("daily_identities").vault
    identities = result.tables["daily_identities"]
    assert _rows(identities, "pid", "hendelsesstatus", "fid", "fidType") == [
        ("P-0001", "N", "01016112345", "1"),  # the leading zero is kept
        ("P-0002", "M", "41016112345", "2"),
    ]


def test_avslutning_rows_with_a_zero_total() -> None:
    result = read_typed(FILES / "avslutning.xml", CONTEXT)
    assert result.ok, result.errors
    closings = result.tables["daily_closings"]
    assert _rows(closings, "avslutningID", "fraDatoPeriode", "tilDatoPeriode") == [
        ("2026-02", date(2026, 2, 1), date(2026, 2, 28))
    ]
    totals = result.tables["daily_control_totals"]
    assert _rows(totals, "avslutningID", "postart", "antall") == [
        ("2026-02", "1", 42),
        ("2026-02", "2", 0),
        ("2026-02", "3", 40),
    ]


def test_without_context_the_tables_start_with_the_mapping() -> None:
    result = read_typed(FILES / "ident.xml")
    assert result.tables["daily_identities"].schema.names[0] == "pid"


# -- errors: reasons, never rows ----------------------------------------------------------------

HOSTILE = [
    # (kind, old, new, what the schema error names)
    ("kontakt", 'hendelsesstatus="N"', 'hendelsesstatus="X"', "hendelsesstatus"),
    ("kontakt", 'meldingstype="E"', 'meldingstype="B"', "meldingstype"),
    ("kontakt", 'versjon="58.0.1"', 'versjon="57.0.1"', "versjon"),
    ("kontakt", 'lopenr="17"', 'lopenr="0"', "lopenr"),
    ("kontakt", 'lopenr="17"', 'lopenr="1000000000"', "lopenr"),
    ("kontakt", 'endretTidspunkt="2026-03-04T10:15:00"', "", "endretTidspunkt"),
    ("kontakt", "2026-03-04T10:15:00", "12026-03-04T10:15:00", "endretTidspunkt"),
    ("kontakt", "2026-03-04T10:15:00", "\u0662\u0660\u0662\u0666-03-04T10:15:00", "endret"),
    ("kontakt", 'innDatoTid="2026-03-02T08:00:00"', 'innDatoTid="2026-03-02"', "innDatoTid"),
    ("kontakt", 'omsorgsniva="1"', 'omsorgsniva="7"', "omsorgsniva"),
    ("kontakt", 'komNrHjem="0301"', 'komNrHjem="\u0966\u0969\u0966\u0967"', "komNrHjem"),
    ("kontakt", 'tilstNr="2"', 'tilstNr="1"', "DiagnoseTilstNr"),
    ("kontakt", 'tilstNr="2"', 'tilstNr="0"', "tilstNr"),
    ("kontakt", 'kodeNr="M161"', 'kodeNr="M16.1"', "kodeNr"),
    ("kontakt", 'pasientNr="P-0001"', 'pasientNr="01016112345 x"', "pasientNr"),
    ("kontakt", "<Diagnose tilstNr", "<Tilstand tilstNr", "Tilstand"),
    ("kontakt", 'kontaktID="K-1" ', "", "kontaktID"),
    ("henvisning", 'mottattDato="2026-01-05"', 'mottattDato="2026-02-30"', "mottattDato"),
    ("henvisning", 'utsettelseskode="4"', 'utsettelseskode="2"', "utsettelseskode"),
    ("ident", 'fid="01016112345"', 'fid="0101611234"', "fid"),
    ("ident", 'fid="01016112345"', 'fid="\u0660\u0661016112345"', "fid"),
    ("ident", 'fidType="1"', 'fidType="4"', "fidType"),
    ("avslutning", 'antall="42"', 'antall="-1"', "antall"),
    ("avslutning", 'antall="42"', 'antall="100000000"', "antall"),
    ("avslutning", 'postart="2"', 'postart="1"', "KontrolltallPostart"),
    ("avslutning", 'fraDatoPeriode="2026-02-01" ', "", "fraDatoPeriode"),
]


@pytest.mark.parametrize(("kind", "old", "new", "mentions"), HOSTILE)
def test_hostile_value_is_rejected(
    tmp_path: Path, kind: str, old: str, new: str, mentions: str
) -> None:
    path = _variant(tmp_path, kind, old, new)
    xsd = get(kind, "58.0.1").schema()
    assert not xsd.validate(_payload(path)), "the schema accepted a hostile value"
    result = read_typed(path, CONTEXT)
    assert result.tables == {}
    assert result.errors and {e.code for e in result.errors} == {"schema_error"}
    text = " ".join(e.message for e in result.errors)
    assert mentions in text, text


def test_an_error_in_a_late_record_leaves_no_rows(tmp_path: Path) -> None:
    """Earlier records validated and collected; the file still gives no rows."""
    path = _variant(tmp_path, "kontakt", 'kontaktID="K-9" hendelsesstatus="C"', 'kontaktID="K-9"')
    result = read_typed(path, CONTEXT)
    assert result.tables == {}
    assert [e.code for e in result.errors] == ["schema_error"]
    assert result.errors[0].line == 15  # the K-9 record's line in the file


@pytest.mark.parametrize(
    ("kind", "old", "new", "code"),
    [
        ("kontakt", 'V="NPR_KONTAKT"', 'V="NPR_IDENT"', "payload_mismatch"),
        ("kontakt", "58_0_1_kontakt", "58_0_1_nosuch", "unknown_payload"),
        ("kontakt", "58_0_1_kontakt", "57_0_1_kontakt", "unknown_payload"),
        ("kontakt", "<MsgHead ", '<!DOCTYPE x [<!ENTITY e "boom">]><MsgHead ', "doctype_forbidden"),
        ("kontakt", 'navn="Kari Nordmann"', 'navn="&e;"', "entity_forbidden"),
        ("kontakt", "</Institusjon>", '</Institusjon><Institusjon institusjonID="1"/>', "schema"),
        ("avslutning", "</Institusjon>", "<Ekstra/></Institusjon>", "schema_error"),
        ("ident", "</Content>", "<Melding/></Content>", "schema_error"),
        ("kontakt", "<MIGversion>", '<Type V="NPR_KONTAKT"/><MIGversion>', "header_schema_error"),
        ("kontakt", "</MsgId>", "</MsgId><MsgId>2</MsgId>", "header_schema_error"),
        ("kontakt", "<MsgType ", '<IssueDate V="2026-13-01"/><MsgType ', "header_schema_error"),
        (
            "ident",
            "<Institusjon ",
            '<Kontaktperson typeKontaktperson="1" navn="x"/><Institusjon ',
            "ok",
        ),
    ],
)
def test_structure_and_envelope_errors(
    tmp_path: Path, kind: str, old: str, new: str, code: str
) -> None:
    result = read_typed(_variant(tmp_path, kind, old, new), CONTEXT)
    if code == "ok":
        assert result.ok, result.errors
        return
    assert result.tables == {}
    assert result.errors and result.errors[0].code.startswith(code), result.errors


def test_a_kontaktperson_after_institusjon_is_an_error(tmp_path: Path) -> None:
    path = _variant(
        tmp_path,
        "ident",
        "</Institusjon>",
        '</Institusjon><Kontaktperson typeKontaktperson="1" navn="x"/>',
    )
    result = read_typed(path)
    assert [e.code for e in result.errors] == ["schema_error"] and result.tables == {}


def test_a_closing_needs_its_record(tmp_path: Path) -> None:
    text = (FILES / "avslutning.xml").read_text(encoding="utf-8")
    start = text.index("<Periodeavslutning")
    end = text.index("</Periodeavslutning>") + len("</Periodeavslutning>")
    path = tmp_path / "empty-closing.xml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    result = read_typed(path)
    assert result.tables == {} and result.errors[0].code == "schema_error"


@pytest.mark.parametrize("kind", ("kontakt", "henvisning", "ident", "pasient", "enhet"))
def test_an_event_message_may_be_empty(tmp_path: Path, kind: str) -> None:
    """A day without events is a valid (if pointless) message: the tables exist, empty."""
    mtype = get(kind, "58.0.1")
    text = (FILES / f"{kind}.xml").read_text(encoding="utf-8")
    start = text.index(f"<{mtype.record} ")
    end = text.index("</Institusjon>")
    path = tmp_path / "empty.xml"
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    result = read_typed(path, CONTEXT)
    assert result.ok, result.errors
    assert result.records == 0
    assert {n: t.num_rows for n, t in result.tables.items()} == {s.name: 0 for s in mtype.tables}


def test_truncated_and_empty_files(tmp_path: Path) -> None:
    data = (FILES / "kontakt.xml").read_bytes()
    truncated = tmp_path / "truncated.xml"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    assert [e.code for e in read_typed(truncated).errors] == ["truncated"]
    assert [e.code for e in read_typed(empty).errors] == ["empty_file"]


def test_the_reader_has_no_per_type_code() -> None:
    """Types are data: the readers' extraction names no message type, element or attribute of
    one (the monthly reader's pass only in its docstring and its error wording)."""
    intake = Path(messages.__file__).parent.parent / "intake"
    words = ('Kontakt"', "Henvisning", "PasientIdent", "Periodeavslutning", "kontaktID",
             "Objektholder", "Episode", "pasientNr", "NPR_ORD", '"ord"', '"ide"')  # fmt: skip
    for name in ("typed_reader.py", "native/__init__.py"):
        text = (intake / name).read_text(encoding="utf-8")
        for word in words:
            assert word not in text, (name, word)
    code = (intake / "reader.py").read_text(encoding="utf-8").split('"""', 2)[2]
    for word in ('"Objektholder"', '"PasientIdent"', '"Enhet"', '"ord"', '"ide"', "NPR_ORD"):
        assert word not in code, ("reader.py", word)


def test_the_reader_streams(tmp_path: Path) -> None:
    """A message of many records is read in one pass without a tree, every row kept."""
    text = (FILES / "ident.xml").read_text(encoding="utf-8")
    start = text.index("<PasientIdent ")
    end = text.index("</Institusjon>")
    records = "".join(
        f'<PasientIdent pid="P{i}" hendelsesstatus="N" endretTidspunkt="2026-03-02T08:00:00"'
        f' fid="{i:011d}" fidType="1"/>\n'
        for i in range(5000)
    )
    path = tmp_path / "big.xml"
    path.write_text(text[:start] + records + text[end:], encoding="utf-8")
    result = read_typed(path)
    assert result.ok, result.errors[:3]
    assert result.tables["daily_identities"].num_rows == 5000
    assert result.tables["daily_identities"]["fid"][4999].as_py() == "00000004999"


def test_the_schema_imports_the_common_types_of_its_version() -> None:
    """One source of truth: every schema imports its version's schemas/<version>/NPR.xsd, no
    copy of it."""
    for mtype in all_types():
        root = etree.parse(str(mtype.schema_path), hardened_parser()).getroot()
        imports = [i.get("schemaLocation") for i in root.iter("{*}import")]
        assert imports == [f"../../../schemas/{mtype.folder.name}/NPR.xsd"]
        assert (mtype.schema_path.parent / imports[0]).resolve().exists()
