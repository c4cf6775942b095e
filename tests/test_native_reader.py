"""The native pass (``npr_pipeline.intake.native``) where it differs in kind from lxml's tree.

The golden test (``test_reader_golden.py``) and the hostile inputs (``test_intake_hostile.py``)
hold the reader to its answers before the switch. What is new here: attribute values come from
SAX2 callbacks (where libxml2 hands ``&`` over as ``&#38;``), not from tree nodes; schema errors
are found by the streaming validator over the whole payload, where lxml validated chunks of 256
patients, so a finding far into a file and a finding raised at an element's end tag must still
name the element and the line of its start tag, as the tree did.
"""

from __future__ import annotations

import gzip
import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from npr_pipeline.intake import native
from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.intake.reader import ReadResult, read_submission
from npr_pipeline.messages import get
from npr_pipeline.registry import read_registry_csv
from npr_pipeline.schemas import MSGHEAD_NS
from tests.soak import examples

GOLDEN = Path(__file__).parent / "reader_golden" / "y2026"
BIG = "4802960_2026-02_ord.xml"  # 469 patients: two chunks of the lxml reader and a part
ORD = get("ord", "58.0.1")


class _Payload:
    """A handler that hands the payload's plan over and ignores the envelope."""

    def start(self, tag: str, attrs: dict[str, str], line: int) -> tuple | None:
        return (native.schema(ORD), native.plan(ORD)) if tag.endswith("}Melding") else None

    def data(self, text: str) -> None:
        pass

    def end(self, tag: str) -> None:
        pass

    def child(self, local: str, attrs: dict[str, str], line: int) -> None:
        pass


def _document(navn: str, encoding: str) -> bytes:
    """A MsgHead with one Enhet whose ``navn`` attribute is ``navn`` as written (escaped)."""
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        f'<MsgHead xmlns="{MSGHEAD_NS}"><Document><RefDoc><Content>\n'
        f'<Melding xmlns="{ORD.namespace}"><Institusjon institusjonID="1">\n'
        f'<Enhet reshID="1" navn="{navn}"/>\n'
        "</Institusjon></Melding></Content></RefDoc></Document></MsgHead>\n"
    )
    return text.encode(encoding, "xmlcharrefreplace")


_XML_CHAR = st.characters(
    blacklist_categories=("Cs",),
    blacklist_characters="\x00\ufffe\uffff",
).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20)
_ESCAPE = {"&": ("&amp;", "&#38;", "&#x26;"), "<": ("&lt;", "&#60;"), '"': ("&quot;", "&#34;")}


@st.composite
def _written(draw: st.DrawFn) -> str:
    """An attribute value as a sender may write it: raw characters (tabs and newlines
    included), the predefined entities and character references in every spelling."""
    parts = []
    for char in draw(st.lists(_XML_CHAR, max_size=40)):
        options = _ESCAPE.get(char, (char, f"&#{ord(char)};", f"&#x{ord(char):x};"))
        parts.append(draw(st.sampled_from(options)))
    return "".join(parts)


# the one file is written anew for every example
@pytest.mark.soak
@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(written=_written(), encoding=st.sampled_from(["UTF-8", "ISO-8859-1"]))
def test_attribute_values_are_what_lxml_reads(tmp_path: Path, written: str, encoding: str) -> None:
    """Every spelling reads back as lxml's tree has it (entities decoded, whitespace
    normalised, ISO-8859-1 transcoded), through the C pass's column buffers."""
    path = tmp_path / f"enhet-{encoding}.xml"
    path.write_bytes(_document(written, encoding))
    expected = etree.parse(str(path)).find(f".//{{{ORD.namespace}}}Enhet").get("navn")
    found = native.read(str(path), _Payload(), 10)
    assert found["well_formed"], found["parse_errors"]
    departments = native.arrays(found["columns"][0])
    assert departments[1].to_pylist() == [expected]  # reshID, navn, ...


@pytest.fixture(scope="module")
def registry() -> RegistryIndex:
    return RegistryIndex(read_registry_csv(GOLDEN / "registry.csv"))


def _read(tmp_path: Path, registry: RegistryIndex, text: str) -> ReadResult:
    path = tmp_path / BIG
    path.write_bytes(text.encode("latin-1"))
    return read_submission(path, registry, tmp_path / "staging", "sid", date(2026, 3, 10), 1 << 30)


def _big() -> list[str]:
    return gzip.decompress((GOLDEN / f"{BIG}.gz").read_bytes()).decode("latin-1").split("\n")


def test_a_finding_in_the_last_patients_names_its_element_and_line(
    tmp_path: Path, registry: RegistryIndex
) -> None:
    """Past every chunk boundary the lxml reader had: the line of the element's start tag and
    the element with its record id, and no rows from the rejected file."""
    lines = _big()
    at = max(i for i, line in enumerate(lines) if "<Episode " in line)
    episode = re.search(r'episodeID="([^"]+)"', lines[at])[1]
    bad = r'\1omsorgsniva="7"'
    lines[at] = re.sub(r'(<Episode [^>]*)omsorgsniva="\d"', bad, lines[at], count=1)
    read = _read(tmp_path, registry, "\n".join(lines))
    assert [(r.code, r.line, r.element) for r in read.errors] == [
        ("schema_error", at + 1, f"Episode episodeID={episode}")
    ]
    assert "attribute 'omsorgsniva'" in read.errors[0].message
    assert read.staged == {} and read.patients == 0 and not (tmp_path / "staging").exists()


def test_a_finding_at_an_end_tag_names_the_start_tag_line(
    tmp_path: Path, registry: RegistryIndex
) -> None:
    """A content-model error is raised at the end tag (the streaming validator knows a child
    is missing only then); it points at the start tag, as the tree's node line did."""
    lines = _big()
    at = max(i for i, line in enumerate(lines) if "<Tilstand " in line)
    without_kode = r"(<Tilstand [^>]*>)<Kode [^>]*/>(</Tilstand>)"
    lines[at] = re.sub(without_kode, r"\1\n\n\2", lines[at], count=1)
    read = _read(tmp_path, registry, "\n".join(lines))
    assert [(r.code, r.line) for r in read.errors] == [("schema_error", at + 1)]
    assert read.errors[0].element.startswith("Tilstand (episodeID=")
    assert "Missing child element" in read.errors[0].message


def test_a_duplicate_patient_across_the_file_is_the_schemas_finding(
    tmp_path: Path, registry: RegistryIndex
) -> None:
    """xs:unique over the whole payload (the lxml reader needed its own check across chunks):
    libxml2's message, at the second occurrence."""
    lines = _big()
    patients = [i for i, line in enumerate(lines) if "<Objektholder " in line]
    first = re.search(r'pasientNr="([^"]+)"', lines[patients[0]])[1]
    last = patients[-1]
    lines[last] = re.sub(r'pasientNr="[^"]+"', f'pasientNr="{first}"', lines[last], count=1)
    read = _read(tmp_path, registry, "\n".join(lines))
    assert [(r.code, r.line, r.element) for r in read.errors] == [
        ("schema_error", last + 1, f"Objektholder pasientNr={first}")
    ]
    assert f"Duplicate key-sequence ['{first}']" in read.errors[0].message
