"""The register's MsgHead schema judges every envelope as the national standard's schema does.

Intake validates each file's envelope (MsgHead without its payload) against the project's own
``npr_pipeline/schemas/msghead/MsgHead.xsd``. Where ``../shared/reference/`` holds the KITH
schema, generated mutations of real envelopes (elements deleted, repeated, swapped; values and
attributes replaced) must get the same verdict from both: the register refuses no header the
standard allows and accepts none it forbids.
"""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from npr_pipeline.intake.envelope_tree import header_schema
from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.intake.reader import read_submission
from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.schemas import MSGHEAD_NS, hardened_parser
from tests.daily_units import REGISTRY
from tests.soak import examples

TESTS = Path(__file__).resolve().parent
REFERENCE_XSD = TESTS.parents[1] / "shared" / "reference" / "kith-msghead" / "MsgHead-v1_2.xsd"
SAMPLES = sorted([*(TESTS / "type_files").glob("*.xml"), *(TESTS / "daily_files").glob("*.xml")])
MH = f"{{{MSGHEAD_NS}}}"


def _envelope(path: Path) -> etree._ElementTree:
    """The file's MsgHead with Content emptied: what the header schema sees of it."""
    tree = etree.parse(str(path), hardened_parser())
    for content in tree.getroot().iter(f"{MH}Content"):
        content[:] = []
        content.text = None
    return tree


@pytest.fixture(scope="module")
def reference() -> etree.XMLSchema:
    if not REFERENCE_XSD.exists():
        pytest.skip(f"reference MsgHead schema not found at {REFERENCE_XSD}")
    return etree.XMLSchema(etree.parse(str(REFERENCE_XSD), hardened_parser()))


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_every_sample_envelope_is_valid(path: Path) -> None:
    schema = header_schema()
    assert schema.validate(_envelope(path)), str(schema.error_log)


def _header_elements(tree: etree._ElementTree) -> list[etree._Element]:
    """Every element of the envelope except the root and Content (whose children are gone)."""
    return [e for e in tree.getroot().iter() if e.getparent() is not None]


TEXTS = st.one_of(
    st.sampled_from(
        ["", " ", "2026-05-02T02:00:00", "2026-05-32T02:00:00", "2026-05-02", "v1.2 2006-05-24",
         "v1.2", "2.16.578.1.12.4.1.1.9051", "2.16..1", "HER", "x y", "12345678901", "24:00:00"]
    ),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12),
)  # fmt: skip
MUTATIONS = st.sampled_from(["delete", "repeat", "swap", "text", "attribute"])


def _mutate(tree: etree._ElementTree, how: str, pick: int, value: str) -> None:
    elements = _header_elements(tree)
    if not elements:  # every element deleted already: nothing left to change
        return
    element = elements[pick % len(elements)]
    parent = element.getparent()
    if how == "delete":
        parent.remove(element)
    elif how == "repeat":
        element.addnext(copy.deepcopy(element))
    elif how == "swap" and element.getnext() is not None:
        element.getnext().addnext(element)
    elif how == "text" and len(element) == 0:
        element.text = value
    elif how == "attribute":
        element.set(("V", "S", "DN", "OT", "X")[pick % 5], value)


@pytest.mark.soak
@settings(max_examples=examples(300), deadline=None)
@given(
    sample=st.sampled_from(SAMPLES),
    steps=st.lists(st.tuples(MUTATIONS, st.integers(0, 200), TEXTS), min_size=1, max_size=3),
)
def test_same_verdict_as_the_standard(
    reference: etree.XMLSchema, sample: Path, steps: list[tuple[str, int, str]]
) -> None:
    tree = _envelope(sample)
    for how, pick, value in steps:
        _mutate(tree, how, pick, value)
    ours = header_schema().validate(tree)
    assert ours == reference.validate(tree), (
        etree.tostring(tree, encoding="unicode"),
        str(header_schema().error_log),
        str(reference.error_log),
    )


def test_a_header_fault_is_named_with_its_line_and_element(tmp_path: Path) -> None:
    """Two MsgInfo/Type elements (the first used to count): the file gets no rows."""
    text = (TESTS / "daily_files" / "kontakt.xml").read_text(encoding="utf-8")
    path = tmp_path / "two-types.xml"
    path.write_text(text.replace("<MIGversion>", '<Type V="NPR_KONTAKT"/>\n<MIGversion>', 1))
    result = read_typed(path)
    assert result.tables == {}
    assert [(e.code, e.element) for e in result.errors] == [("header_schema_error", "Type")]
    line = text[: text.index("<MIGversion>")].count("\n") + 1
    assert result.errors[0].line == line
    assert "Expected is ( MIGversion )" in result.errors[0].message


def test_the_monthly_reader_turns_away_another_routes_file(tmp_path: Path) -> None:
    """A report file reaches the monthly reader only if the router's lxml parse could not read
    its header: its type and payload agree and its period is a monthly one, so the gate would
    pass it; the reader does not."""
    unit = REGISTRY | {"reshID": "4201115", "orgnr": "999888777", "message_types": "NPR_KPP"}
    index = RegistryIndex(pd.DataFrame([unit | {"route": ""}]))
    path = TESTS / "type_files" / "kpp.xml"
    read = read_submission(path, index, tmp_path / "staging", "sid", date(2026, 5, 10), 1 << 30)
    assert [(r.code, r.message.rsplit(" ", 1)[-1]) for r in read.gate.reasons] == [
        ("unknown_payload", "kpp.")
    ]
    assert read.staged == {} and not (tmp_path / "staging").exists()
