"""One validation for both readers (``npr_pipeline.intake.validation``): the same refusal of a
hostile or broken file, and schema errors with the same masking, line and element naming."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from npr_pipeline import reference
from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.intake.reader import read_submission
from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.registry import read_registry_csv

DAILY = Path(__file__).parent / "daily_files"
HOSTILE = {
    "empty": b"",
    "doctype": b'<?xml version="1.0"?>\n<!DOCTYPE MsgHead [<!ENTITY a "aaaa">]>\n<MsgHead/>',
    "utf16": '<?xml version="1.0" encoding="UTF-16"?><MsgHead/>'.encode("utf-16"),
    "declared latin-2": b'<?xml version="1.0" encoding="ISO-8859-2"?><MsgHead/>',
    "not msghead": b'<?xml version="1.0"?>\n<Melding xmlns="urn:x"/>',
    "not xml": b"this is no XML at all",
    "utf-8 mark, latin-1 declared": b"\xef\xbb\xbf"
    + b'<?xml version="1.0" encoding="ISO-8859-1"?><MsgHead/>',
}
EXPECTED = {
    "empty": "empty_file",
    "doctype": "doctype_forbidden",
    "utf16": "unsupported_encoding",
    "declared latin-2": "unsupported_encoding",
    "not msghead": "not_msghead",
    "not xml": "not_xml",
    "utf-8 mark, latin-1 declared": "encoding_error",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_both_readers_refuse_a_file_the_same_way(case: str, tmp_path: Path) -> None:
    path = tmp_path / f"{case}.xml"
    path.write_bytes(HOSTILE[case])
    index = RegistryIndex(read_registry_csv(reference.reference_dir() / "units.csv"))
    monthly = read_submission(path, index, tmp_path / "staging", "s", date(2026, 3, 10), 1 << 20)
    typed = read_typed(path)
    assert [r.code for r in monthly.reasons] == [EXPECTED[case]]
    assert typed.errors == monthly.reasons  # code, message, line, element: all the same


def test_a_typed_schema_error_masks_the_fodselsnummer_and_names_the_record(
    tmp_path: Path,
) -> None:
    """Hand-checked: the first PasientIdent (line 5) gets a 12-digit fid; libxml2 quotes it,
    the answer shows its first six digits only and names the element by its own pid."""
    text = (DAILY / "ident.xml").read_text(encoding="utf-8")
    path = tmp_path / "ident.xml"
    path.write_text(text.replace('fid="01016112345"', 'fid="010161123456"'), encoding="utf-8")
    errors = read_typed(path).errors
    assert [(e.code, e.line, e.element) for e in errors] == [
        ("schema_error", 5, "PasientIdent pid=P-0001")
    ]
    assert "010161123456" not in errors[0].message and "010161*****" in errors[0].message
