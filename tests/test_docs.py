"""Docs that must not drift from the code they describe."""

from __future__ import annotations

from pathlib import Path

from npr_pipeline.intake.reasons import CODES

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_intake_page_lists_every_reason_code() -> None:
    text = (DOCS / "intake.md").read_text(encoding="utf-8")
    missing = [code for code in CODES if f"| `{code}` |" not in text]
    assert not missing


def test_quality_page_is_generated_from_the_catalogue() -> None:
    from npr_pipeline.quality.catalogue import load_catalogue
    from npr_pipeline.quality.docs import render

    assert (DOCS / "quality.md").read_text(encoding="utf-8") == render(load_catalogue())
