"""``contact_before_birth``: a patient whose fødselsnummer is born after their first contact.

The number can pass its check digits and still be wrong for the patient (a sibling's, a
mother's, a typo that keeps the mod-11): a contact before birth is impossible, so the rule is an
error and the patient's records are left out like those of a number that fails its digits. The
rule reads the vault's numbers, so only the SQL engine runs it, per submission at intake.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from npr_pipeline.feedback.reports import read_report_findings
from npr_pipeline.home import Home
from npr_pipeline.identity import birth_dates, synthetic_fnr
from tests.intake_files import decode, fill_inbox, make_year, mutate, run_intake
from tests.recompute_raw import first_contact


def _number(born: date) -> str:
    """A synthetic number born on ``born`` with valid check digits."""
    low = 0 if born.year < 2000 else 500
    return next(n for i in range(low, low + 500) if (n := synthetic_fnr(born, i)))


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2039, 12, 31)))
def test_the_birth_date_of_every_synthetic_number_is_its_own(born: date) -> None:
    assert birth_dates(pa.array([_number(born)])).to_pylist() == [born]


def test_numbers_without_a_birth_date_have_none() -> None:
    fh_number, d_number = "81018012345", "41018012345"
    values = [None, "", "1234567890", "0101801234x", fh_number, "31029912345", d_number]
    assert birth_dates(pa.array(values)).to_pylist() == [None] * 6 + [date(1980, 1, 1)]


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory):
    return make_year(tmp_path_factory.mktemp("birth-year"), units=1, through=1, seed=5)


def _first_contacts(ord_path: Path) -> dict[str, date]:
    """Each patient's first contact day (:func:`tests.recompute_raw.first_contact`)."""
    holders = etree.parse(str(ord_path)).iter("{*}Objektholder")
    return {h.get("pasientNr"): day for h in holders if (day := first_contact(h)) is not None}


def test_a_number_born_after_the_first_contact_is_an_error_naming_the_patient(
    year, tmp_path: Path
) -> None:
    unit = next(iter(year.values()))
    ord_path, ide_path = unit.file("ord", 1), unit.file("ide", 1)
    first = _first_contacts(ord_path)
    late, on_the_day = sorted(first)[:2]
    text = decode(ide_path.read_bytes())
    edits = [
        (f'pid="{pid}" fid="{fid}"', f'pid="{pid}" fid="{_number(born)}"')
        for pid, born in ((late, first[late] + timedelta(days=1)), (on_the_day, first[on_the_day]))
        for fid in re.findall(rf'pid="{pid}" fid="(\d{{11}})"', text)
    ]
    assert len(edits) == 2
    home = Home(root=tmp_path / "home")
    inbox = fill_inbox(tmp_path / "inbox", [ord_path], **{ide_path.name: mutate(ide_path, *edits)})
    summary = run_intake(home, inbox)
    assert all(s.status == "accepted" for s in summary.submissions)
    findings = [
        f
        for folder in home.feedback.iterdir()
        for f in read_report_findings(folder)
        if f["rule"] == "contact_before_birth"
    ]
    assert [(f["severity"], f["record"].get("pasientNr")) for f in findings] == [("error", late)]
    assert "fødselsdatoen" in findings[0]["message"]
