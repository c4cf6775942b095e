"""The report types' catalogue checks (``expectations/reports/``) on the hand-written files of
``tests/type_files/``: the clean files' findings checked by hand against the files, and each
check made to fail by one edit, with the record and line a coordinator would be shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.quality.catalogue import table_columns
from npr_pipeline.quality.report_checks import check_report, report_checks
from tests.intake_files import mutate

FILES = Path(__file__).resolve().parent / "type_files"
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _found(path: Path) -> list[tuple[str, str | None, str | None, int | None]]:
    result = read_typed(path, {"submission_id": "S-1", "unit": "4201115"})
    assert result.ok, result.errors
    return [(f.rule, f.episode_id, f.patient_nr, f.line) for f in check_report(result.tables)]


def test_the_hand_written_files() -> None:
    # kpp.xml: E-1 1.24 = 0.12 + 1.12; E-2 has a total and no cost lines (not checked);
    # E-3 10.12 = -1 + 11.12, and the -1 on line 14 is negative.
    assert _found(FILES / "kpp.xml") == [("kpp_cost_non_negative", "E-3", "P-0002", 14)]
    for kind in ("forlop", "vtk", "tsb"):
        assert _found(FILES / f"{kind}.xml") == [], kind


@pytest.mark.parametrize(
    ("kind", "edit", "expected"),
    [
        ("kpp", ('total="1.24"', 'total="1.25"'), ("kpp_total_equals_costs", "E-1", "P-0001")),
        ("kpp", ('total="10.12"', 'total="-10.12"'), ("kpp_total_non_negative", "E-3", "P-0002")),
        ("forlop", ('hendelse="E" dato="2026-03-02"', 'hendelse="E" dato="2026-01-02"'),
         ("pathway_events_in_order", "F-1", "P-0001")),
        ("vtk", ('gyldigFra="2026-04-21"', 'gyldigFra="2026-05-21"'),
         ("decision_period_in_order", "V-3", "P-0002")),
        ("tsb", ('rusmiddelNr="1"', 'rusmiddelNr="3"'),
         ("tsb_main_substance_first", "E-1", "P-0001")),
    ],
)  # fmt: skip
def test_each_check_fails_on_its_defect(
    tmp_path: Path, kind: str, edit: tuple[str, str], expected: tuple
) -> None:
    variant = tmp_path / f"{kind}.xml"
    variant.write_bytes(mutate(FILES / f"{kind}.xml", edit))
    assert {f[:3] for f in _found(variant) if f[0] == expected[0]} == {expected}


def test_every_report_check_names_real_columns_and_is_documented() -> None:
    text = (DOCS / "intake.md").read_text(encoding="utf-8")
    checks = report_checks()
    assert {c.table for c in checks} == {
        "kpp_episodes", "kpp_costs", "pathway_events", "coercion_decisions", "tsb_substances"
    }  # fmt: skip
    for check in checks:
        assert set(check.record) <= table_columns(check.table)
        assert f"`{check.id}`" in text, check.id
