"""The feedback pages a reporting officer reads, from real files through intake: libxml2's
schema errors in plain Norwegian (the original kept below), elements named by their record,
the value at fault in XPR_ERR findings (a fødselsnummer only masked), times in Oslo time."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from npr_pipeline.feedback.reports import (
    display_files,
    read_report_findings,
    read_report_summary,
)
from npr_pipeline.feedback.schema_messages import explain, mask_fodselsnummer
from npr_pipeline.home import Home
from tests.intake_files import decode, fill_inbox, make_year, mutate, run_intake

SCHEMA_EDITS = [
    ('omsorgsniva="1" innmateHast="1"', 'omsorgsniva="7" innmateHast="1"'),
    ('<Pasient kjonn="2" fodselsar="1965"', '<Pasient kjonn="2" fodselsar="19x5"'),
    ('innDatoTid="2026-01-22T02:55:00"', 'innDatoTid="2026-01-32T02:55:00"'),
    ('<Kode kodeNr="I311" kodeverk="D"/>', '<Kode kodeNr="I311" kodeverk="D" farge="rod"/>'),
]


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory):
    return make_year(tmp_path_factory.mktemp("pages-year"), units=1, through=1, seed=5)


def _only_folder(home: Home) -> Path:
    (folder,) = [p for p in home.feedback.iterdir() if p.is_dir()]
    return folder


def test_schema_errors_read_as_norwegian_sentences_naming_the_record(year, tmp_path) -> None:
    unit = next(iter(year.values()))
    path = unit.file("ord", 1)
    text = decode(path.read_bytes())
    first = re.search(r'<Episode episodeID="([^"]+)"[^>]*omsorgsniva="1" innmateHast="1"', text)
    assert first, "the synthetic file changed shape"
    dropped = re.search(r'<Episode episodeID="([^"]+)" (reshID="\d+" )', text)
    edits = [*SCHEMA_EDITS, (dropped[0], dropped[0].replace(dropped[2], ""))]
    data = mutate(path, *edits)
    home = Home(root=tmp_path / "home")
    summary = run_intake(home, fill_inbox(tmp_path / "inbox", **{path.name: data}))
    assert summary.submissions[0].status == "rejected"
    folder = _only_folder(home)
    display_files(folder)  # intake writes the XML; the page is rendered when asked
    page = (folder / "XPR_VAL.html").read_text(encoding="utf-8")
    findings = [f for f in read_report_findings(folder) if f["rule"] == "schema_error"]
    elements = [f["record"].get("element", "") for f in findings]
    assert not [e for e in elements if e.startswith("*")], elements
    assert any(e.startswith("Episode episodeID=") for e in elements), elements
    assert "Pasient (pasientNr=" in page
    for sentence in [
        "Attributtet omsorgsniva på Episode har verdien «7», som ikke er tillatt. "
        "Tillatte verdier: 1, 2, 3, 8.",
        "Attributtet fodselsar på Pasient har verdien «19x5», som har feil form",
        "Attributtet innDatoTid på Episode har verdien «2026-01-32T02:55:00», som ikke er "
        "gyldig: den må være et tidspunkt",
        "Attributtet farge er ikke tillatt på Kode.",
        "Episode mangler det påkrevde attributtet reshID.",
    ]:
        assert sentence in page, sentence
    assert "[facet &#39;enumeration&#39;]" in page or "[facet 'enumeration']" in page  # original
    received = datetime.fromisoformat(read_report_summary(folder)["XPR_VAL"]["received"])
    oslo = received.astimezone(ZoneInfo("Europe/Oslo")).strftime("%d.%m.%Y kl. %H:%M")
    assert f"{oslo} (norsk tid)" in page


def test_content_findings_show_the_value_and_never_a_fodselsnummer(year, tmp_path) -> None:
    unit = next(iter(year.values()))
    ord_path, ide_path = unit.file("ord", 1), unit.file("ide", 1)
    fid = re.search(r'fid="(\d{11})"', decode(ide_path.read_bytes()))[1]
    wrong = fid[:10] + str((int(fid[10]) + 1) % 10)  # a broken check digit
    ide = mutate(ide_path, (f'fid="{fid}"', f'fid="{wrong}"'))
    ends = 'innDatoTid="2026-01-22T02:55:00" utDatoTid="2026-01-2'
    ord_ = mutate(ord_path, (ends + '4T12:05:00"', ends + '1T12:05:00"'))  # ends before it starts
    home = Home(root=tmp_path / "home")
    run_intake(home, fill_inbox(tmp_path / "inbox", **{ord_path.name: ord_, ide_path.name: ide}))
    found = {}
    for folder in home.feedback.iterdir():
        display_files(folder)  # each display file too, rendered as `npr feedback` does
        for finding in read_report_findings(folder):
            found.setdefault(finding["rule"], finding)
        for report in folder.iterdir():
            assert wrong not in report.read_text(encoding="utf-8-sig"), report
            assert fid not in report.read_text(encoding="utf-8-sig"), report
    assert found["fodselsnummer_valid"]["record"]["value"] == wrong[:6] + "*****"
    dates = found["episode_dates_in_order"]["record"]["value"]
    assert "utDatoTid=2026-01-21" in dates and "innDatoTid=2026-01-22" in dates
    pages = "".join(p.read_text(encoding="utf-8") for p in home.feedback.glob("*/XPR_ERR.html"))
    assert "Verdi (value)" in pages and wrong[:6] + "*****" in pages


def test_a_fodselsnummer_quoted_by_libxml2_is_masked() -> None:
    message = (
        "The payload does not validate against the message schema. Element "
        "'{http://www.npr.no/xmlstds/58_0_1_ide}PasientIdent', attribute 'fid': [facet "
        "'pattern'] The value '1990651807' is not accepted by the pattern '[0-9]{11}'."
    )
    masked = mask_fodselsnummer(message)
    assert "1990651807" not in masked and "'199065*****'" in masked
    assert explain(masked) == (
        "Attributtet fid på PasientIdent har verdien «199065*****», som har feil form: "
        "må være nøyaktig 11 sifre."
    )
    assert "19906518077" not in mask_fodselsnummer("value 19906518077 here")


@pytest.mark.parametrize(
    ("message", "sentence"),
    [
        (
            "Element '{x}Tilstand', attribute 'tilstNr': [facet 'maxInclusive'] The value '99' "
            "is greater than the maximum value allowed ('30').",
            "Attributtet tilstNr på Tilstand har verdien «99», som er utenfor det tillatte: "
            "høyst 30.",
        ),
        (
            "Element '{x}Tilstand', attribute 'tilstNr': [facet 'minInclusive'] The value '0' "
            "is less than the minimum value allowed ('1').",
            "Attributtet tilstNr på Tilstand har verdien «0», som er utenfor det tillatte: "
            "minst 1.",
        ),
        (
            "Element '{x}Foo': This element is not expected. Expected is one of ( {x}Episode, "
            "{x}Henvisningsperiode ).",
            "Elementet Foo er ikke tillatt her. Her forventes: Episode, Henvisningsperiode.",
        ),
        (
            "Element '{x}Pasient', attribute 'fodselsar': 'abcd' is not a valid value of the "
            "atomic type 'xs:integer'.",
            "Attributtet fodselsar på Pasient har verdien «abcd», som ikke er gyldig: den må "
            "være et heltall.",
        ),
        (
            "Element '{x}Henvisningsperiode', attribute 'mottattDato': '2026-02-30' is not a "
            "valid value of the atomic type 'xs:date'.",
            "Attributtet mottattDato på Henvisningsperiode har verdien «2026-02-30», som ikke "
            "er gyldig: den må være en dato (ÅÅÅÅ-MM-DD, f.eks. 2026-01-31).",
        ),
        ("Something libxml2 says rarely.", None),
    ],
)
def test_common_libxml2_errors_translate(message: str, sentence: str | None) -> None:
    assert explain(message) == sentence
