"""The ord/ide schemas accept what units must send and reject what NPR rejects.

Schema errors reject a whole submission, so every rule the schemas encode is pinned here with
a message that passes and one that fails; the generated docs are checked against the schemas.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from lxml import etree
from lxml.builder import ElementMaker

from npr_pipeline import schema_docs
from npr_pipeline.messages import all_types, by_namespace, get, of_route, versions
from npr_pipeline.schemas import MSGHEAD_NS, hardened_parser

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
MSGHEAD_XSD = REFERENCE / "kith-msghead" / "MsgHead-v1_2.xsd"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "messages"

MELDING = {
    "meldingstype": "B",
    "fraDatoPeriode": "2026-01-01",
    "tilDatoPeriode": "2026-03-31",
    "uttakDato": "2026-04-02",
    "uttakTidspunkt": "2026-04-02T05:30:00",
    "leverandor": "Eksempel EPJ AS",
    "navnEPJ": "EksempelEPJ",
    "versjonEPJ": "25.1",
    "versjonUt": "1.0",
    "lopenr": "3",
    "lokalident": "ord-2026-03",
}
EPISODE = {
    "episodeID": "E-1",
    "reshID": "4201115",
    "fagomrade": "050",
    "omsorgsniva": "1",
    "innmateHast": "4",
    "kontaktType": "2",
    "debitor": "1",
    "komNrHjem": "0301",
    "innDatoTid": "2026-02-03T08:00:00",
    "utDatoTid": "2026-02-05T12:00:00",
    "henvisningsperiodeID": "H-1",
    "drg": "107A",
    "drgKilde": "NPK",
}
HENVISNINGSPERIODE = {
    "henvisningsperiodeID": "H-1",
    "reshID": "4201115",
    "fagomrade": "050",
    "mottattDato": "2025-11-20",
    "ansiennitetsdato": "2025-11-18",
    "vurderingsdato": "2025-11-25",
    "prioritet": "1",
    "fristStartHelsehjelp": "2026-02-20",
    "tjenestestart": "2026-02-03",
    "avviklingsdato": "2026-02-03",
    "avviklingskode": "1",
}


def _melding(version: str, msg: str) -> tuple[ElementMaker, etree._Element]:
    """An ElementMaker for a message namespace and the Melding root of that version."""
    ns = get(msg, version).namespace
    maker = ElementMaker(namespace=ns, nsmap={None: ns})
    return maker, maker.Melding(MELDING | {"versjon": version})


def build_ord(version: str = "58.0.1", nace: str | None = "86.102") -> etree._Element:
    """A complete ord message: contact, unit, a patient with waiting list and one episode."""
    e, melding = _melding(version, "ord")
    enhet = {"reshID": "4201115", "navn": "Ortopedisk avdeling", "sektor": "641"}
    enhet |= {"isfRefusjon": "1"} | ({"nace": nace} if nace else {})
    kode = e.Kode(kodeNr="NFB40", kodeverk="K")
    prosedyre = e.Prosedyre({"prosedyreNr": "1", "dato": "2026-02-03"}, kode)
    melding.extend(
        [
            e.Kontaktperson(typeKontaktperson="1", navn="Kari Nordmann", epost="kari@example.no"),
            e.Institusjon(
                {"institusjonID": "999888777", "navn": "Helse Eksempel HF"},
                e.Enhet(enhet),
                e.Objektholder(
                    {"pasientNr": "P-0001"},
                    e.Pasient(kjonn="2", fodselsar="1961", komNrHjem="0301"),
                    e.Henvisningsperiode(
                        HENVISNINGSPERIODE,
                        e.Utsettelse(
                            utsettelseskode="4",
                            utsettelsesdato="2026-01-10",
                            utsettelseSluttdato="2026-01-20",
                        ),
                    ),
                    e.Episode(
                        EPISODE,
                        e.Tilstand({"tilstNr": "1"}, e.Kode(kodeNr="M161", kodeverk="D")),
                        e.Tjeneste({"tjenesteNr": "1"}, e.Tiltak({"tiltakNr": "1"}, prosedyre)),
                    ),
                ),
            ),
        ]
    )
    return melding


def build_ide(version: str = "58.0.1", fid: str = "01016112345") -> etree._Element:
    """An ide message linking the ord message's patient number to a fødselsnummer."""
    e, melding = _melding(version, "ide")
    melding.extend(
        [
            e.Kontaktperson(typeKontaktperson="15", navn="Ola Leverandør"),
            e.Institusjon(
                {"institusjonID": "999888777"},
                e.PasientIdent(pid="P-0001", fid=fid, fidType="1"),
            ),
        ]
    )
    return melding


def _first(root: etree._Element, tag: str) -> etree._Element:
    """The first element of a class anywhere in the message, whatever its namespace."""
    return next(root.iter(f"{{*}}{tag}"))


def assert_valid(doc: etree._Element, version: str, msg: str) -> None:
    xsd = get(msg, version).schema()
    assert xsd.validate(doc), str(xsd.error_log)


def assert_invalid(doc: etree._Element, version: str, msg: str, mentions: str) -> None:
    """The message fails, and for the expected reason: an error names `mentions`."""
    xsd = get(msg, version).schema()
    assert not xsd.validate(doc), "the schema accepted an invalid message"
    messages = [error.message for error in xsd.error_log]
    assert any(mentions in m for m in messages), messages


def test_full_ord_58_validates() -> None:
    assert_valid(build_ord("58.0.1"), "58.0.1", "ord")


def test_nace_exists_only_in_58() -> None:
    assert_invalid(build_ord("57.0.1", nace="86.102"), "57.0.1", "ord", "'nace'")
    assert_valid(build_ord("57.0.1", nace=None), "57.0.1", "ord")
    assert_valid(build_ord("58.0.1", nace=None), "58.0.1", "ord")


def test_other_version_is_rejected() -> None:
    wrong_versjon = build_ord("58.0.1")
    wrong_versjon.set("versjon", "57.0.1")
    assert_invalid(wrong_versjon, "58.0.1", "ord", "fixed value")
    assert_invalid(build_ord("57.0.1", nace=None), "58.0.1", "ord", "No matching global")
    assert_invalid(build_ord("58.0.1", nace=None), "57.0.1", "ord", "No matching global")


@pytest.mark.parametrize(
    ("tag", "attribute"),
    [
        ("Melding", "lopenr"),
        ("Melding", "versjon"),
        ("Institusjon", "institusjonID"),
        ("Enhet", "reshID"),
        ("Objektholder", "pasientNr"),
        ("Pasient", "komNrHjem"),
        ("Henvisningsperiode", "ansiennitetsdato"),
        ("Utsettelse", "utsettelseskode"),
        ("Episode", "innDatoTid"),
        ("Tilstand", "tilstNr"),
        ("Kode", "kodeverk"),
    ],
)
def test_missing_required_attribute_fails(tag: str, attribute: str) -> None:
    doc = build_ord()
    del _first(doc, tag).attrib[attribute]
    assert_invalid(doc, "58.0.1", "ord", f"'{attribute}' is required")


@pytest.mark.parametrize(
    ("tag", "attribute", "value"),
    [
        ("Episode", "omsorgsniva", "7"),
        ("Episode", "fagomrade", "23"),
        ("Episode", "kontaktType", "9"),
        ("Episode", "debitor", "2"),
        ("Episode", "innDatoTid", "2026-02-03"),
        ("Pasient", "komNrHjem", "301"),
        ("Pasient", "kjonn", "K"),
        ("Pasient", "fodselsar", "61"),
        ("Kode", "kodeNr", "M16.1"),
        ("Kode", "kodeverk", "X"),
        ("Melding", "meldingstype", "E"),
        ("Melding", "lopenr", "0"),
        ("Institusjon", "institusjonID", "99988877"),
        ("Enhet", "reshID", "42011"),
        ("Enhet", "nace", "86102"),
        ("Henvisningsperiode", "avviklingskode", "6"),
        ("Henvisningsperiode", "prioritet", "3"),
        ("Utsettelse", "utsettelseskode", "2"),
        ("Objektholder", "pasientNr", "P 0001"),
    ],
)
def test_bad_value_fails(tag: str, attribute: str, value: str) -> None:
    doc = build_ord()
    _first(doc, tag).set(attribute, value)
    assert_invalid(doc, "58.0.1", "ord", f"'{attribute}'")


def test_structure_is_enforced() -> None:
    without_kode = build_ord()
    tilstand = _first(without_kode, "Tilstand")
    tilstand.remove(_first(tilstand, "Kode"))
    assert_invalid(without_kode, "58.0.1", "ord", "Missing child element")

    without_enhet = build_ord()
    _first(without_enhet, "Institusjon").remove(_first(without_enhet, "Enhet"))
    assert_invalid(without_enhet, "58.0.1", "ord", "Expected is ( {")

    twice_the_patient = build_ord()
    institusjon = _first(twice_the_patient, "Institusjon")
    institusjon.append(copy.deepcopy(_first(twice_the_patient, "Objektholder")))
    assert_invalid(twice_the_patient, "58.0.1", "ord", "Duplicate key-sequence ['P-0001']")


def test_ide_validates_and_rejects_a_short_fid() -> None:
    for version in versions("ide"):
        assert_valid(build_ide(version), version, "ide")
        assert_invalid(build_ide(version, fid="0101611234"), version, "ide", "'fid'")
    duplicate = build_ide()
    institusjon = _first(duplicate, "Institusjon")
    institusjon.append(copy.deepcopy(_first(duplicate, "PasientIdent")))
    assert_invalid(duplicate, "58.0.1", "ide", "Duplicate key-sequence ['P-0001']")


def test_57_and_58_differ_only_by_the_2026_units() -> None:
    """The only structural change of 2026 is on Enhet (seed 000): the voluntary nace of a
    behandlingssted, and the kind of unit and department code (3511) of a fagenhet."""
    for msg in sorted({t.kind for t in of_route("monthly")}):
        old = schema_docs.read_classes(get(msg, "57.0.1").schema_path)
        new = schema_docs.read_classes(get(msg, "58.0.1").schema_path)
        assert old.keys() == new.keys()
        for name in old:
            added = {a.name for a in new[name].attributes} - {a.name for a in old[name].attributes}
            removed = {a.name for a in old[name].attributes} - {
                a.name for a in new[name].attributes
            }
            assert removed == set()
            enhet = {"nace", "enhetstype", "avdeling"}
            assert added == (enhet if (msg, name) == ("ord", "Enhet") else set())
            assert old[name].children == new[name].children


def _envelope(content: etree._Element) -> etree._Element:
    """A MsgHead v1.2 envelope from a unit to NPR production, as docs/messages/envelope.md says."""
    m = ElementMaker(namespace=MSGHEAD_NS, nsmap={None: MSGHEAD_NS})

    def ident(value: str, kind: str) -> etree._Element:
        return m.Ident(m.Id(value), m.TypeId(V=kind, S="2.16.578.1.12.4.1.1.9051"))

    return m.MsgHead(
        m.MsgInfo(
            m.Type(V="NPR_ORD"),
            m.MIGversion("v1.2 2006-05-24"),
            m.GenDate("2026-04-02T06:15:00"),
            m.MsgId("0f8fad5b-d9cb-469f-a165-70867728950e"),
            m.Sender(
                m.Organisation(
                    m.OrganisationName("Helse Eksempel HF"),
                    ident("123456", "HER"),
                    ident("999888777", "ENH"),
                    ident("4201115", "RSH"),
                )
            ),
            m.Receiver(
                m.Organisation(m.OrganisationName("Norsk pasientregister"), ident("94378", "HER"))
            ),
        ),
        m.Document(m.RefDoc(m.MsgType(V="XML"), m.Content(content))),
    )


def test_envelope_conforms_to_msghead() -> None:
    if not MSGHEAD_XSD.exists():
        pytest.skip(f"reference MsgHead schema not found at {MSGHEAD_XSD}")
    msghead = etree.XMLSchema(etree.parse(str(MSGHEAD_XSD), hardened_parser()))
    envelope = _envelope(build_ord())
    content = _first(envelope, "Content")
    payload = content[0]
    assert by_namespace(etree.QName(payload).namespace) is get("ord", "58.0.1")
    assert_valid(payload, "58.0.1", "ord")
    content.remove(payload)
    assert msghead.validate(envelope), str(msghead.error_log)
    _first(envelope, "Type").set("S", "2.16.578.1.12.4.1.1.8279")
    assert not msghead.validate(envelope), "MsgInfo/Type is a CS: it has no S attribute"


def test_namespaces_round_trip() -> None:
    assert get("ord", "58.0.1").namespace == "http://www.npr.no/xmlstds/58_0_1_ord"
    for mtype in of_route("monthly"):
        assert by_namespace(mtype.namespace) is mtype
        root = etree.parse(str(mtype.schema_path), hardened_parser()).getroot()
        assert root.get("targetNamespace") == mtype.namespace
        assert root.get("version") == f"{mtype.version}.0"


@pytest.mark.parametrize(
    "ns",
    [
        "http://www.npr.no/xmlstds/58_0_1",
        "http://www.npr.no/xmlstds/58_0_1_pakke",  # a type we hold no folder of
        "http://www.npr.no/xmlstds/56_0_1_ord",
        "http://www.npr.no/xmlstds/58_0_1_ord/extra",
        MSGHEAD_NS,
        "",
    ],
)
def test_a_foreign_namespace_is_no_type(ns: str) -> None:
    assert by_namespace(ns) is None


def test_unknown_version_or_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="56.0.1"):
        get("ord", "56.0.1")
    with pytest.raises(ValueError, match="pakke"):
        versions("pakke")


def test_schema_is_compiled_once() -> None:
    assert get("ord", "58.0.1").schema() is get("ord", "58.0.1").schema()


@pytest.mark.parametrize("name", sorted(schema_docs.pages()))
def test_docs_are_up_to_date(name: str) -> None:
    """ord/ide and every message type folder (the daily messages) have an up-to-date page."""
    page = DOCS / name
    assert page.read_text(encoding="utf-8") == schema_docs.pages()[name], (
        f"{page} is out of date: run python -m npr_pipeline.schema_docs"
    )


def test_every_message_kind_has_a_page() -> None:
    kinds = {t.kind for t in all_types()}
    assert {f"{kind}.md" for kind in kinds} <= set(schema_docs.pages())
