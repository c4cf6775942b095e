"""The registry index answers as the registry's rows do, whatever its compact layout.

The index holds each unit as a tuple of interned values and makes a unit's dict only when a
file resolves to it (65,000 units as dicts were ~115 MiB of the main process, issue 13): every
unit must still come back as exactly its registry row, by each of its idents.
"""

from __future__ import annotations

from npr_pipeline import reference
from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.registry import read_registry_csv


def _units() -> list[dict[str, str]]:
    frame = read_registry_csv(reference.reference_dir() / "units.csv")
    return frame.astype(str).to_dict("records")


def test_every_unit_resolves_to_its_registry_row_by_each_ident() -> None:
    units = _units()
    index = RegistryIndex(read_registry_csv(reference.reference_dir() / "units.csv"))
    assert len(units) > 1_000
    for unit in units:
        by_resh = index.resolve({"RSH": [unit["reshID"]], "HER": [unit["herID"]]})
        assert by_resh == (unit, None)
        assert index.resolve({"HER": [unit["herID"]], "ENH": [unit["orgnr"]]}) == (unit, None)


def test_an_organisation_number_of_several_units_and_unknown_idents_are_refused() -> None:
    frame = read_registry_csv(reference.reference_dir() / "units.csv")
    frame.loc[1, "orgnr"] = frame.loc[0, "orgnr"]  # two sites of one organisation
    index = RegistryIndex(frame)
    unit, found = index.resolve({"ENH": [frame.loc[0, "orgnr"]]})
    assert unit is None and found is not None and found.code == "sender_mismatch"
    assert index.resolve({"RSH": [frame.loc[1, "reshID"]], "ENH": [frame.loc[0, "orgnr"]]}) == (
        frame.astype(str).to_dict("records")[1],
        None,
    )
    unit, found = index.resolve({"HER": ["0"], "ENH": ["000000000"]})
    assert unit is None and found is not None and found.code == "unknown_sender"
