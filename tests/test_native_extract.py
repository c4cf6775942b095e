"""The native extractor evaluated in docs/decisions/extraction.md gives the reader's rows.

``benchmarks.reader_floor`` compares its cost with the lxml reader's; the comparison only
means something if both produce the same lake tables. Real synthetic files (UTF-8 and
ISO-8859-1), read by the real reader with schema validation, against xml2arrow's tables, row
for row and column for column; the ``line`` columns are the known difference (xml2arrow has no
source lines) and must be null on the native side.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmarks import native_extract
from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.intake.reader import read_submission
from npr_pipeline.registry import read_registry_csv
from tests.intake_files import encoding_of, make_year


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], RegistryIndex]:
    out = tmp_path_factory.mktemp("synth-native")
    units = make_year(out, units=6, through=2, episodes=20.0)
    files = sorted(path for unit in units.values() for path in unit.files.values())
    return files, RegistryIndex(read_registry_csv(out / "registry.csv"))


def test_native_tables_equal_the_readers_row_for_row(year, tmp_path: Path) -> None:
    files, index = year
    compared: dict[str, int] = {}
    for path in files:
        read = read_submission(path, index, tmp_path / path.stem, "sid", date(2026, 3, 5), 1 << 30)
        assert not read.errors, read.errors
        keys = ("sid", read.gate.unit["reshID"], read.year)
        extract = native_extract.extract_ord if "_ord" in path.name else native_extract.extract_ide
        native_extract.write(extract(path, keys), tmp_path / "native" / path.stem)
        native = {p.stem: p for p in (tmp_path / "native" / path.stem).glob("*.parquet")}
        assert set(native) == set(read.staged)
        for table, staged in read.staged.items():  # both as the lake stores them
            ours, theirs = pq.read_table(staged), pq.read_table(native[table])
            assert theirs.schema.equals(ours.schema), (theirs.schema, ours.schema)
            if "line" in ours.column_names:
                assert theirs["line"].null_count == theirs.num_rows
                ours, theirs = ours.drop(["line"]), theirs.drop(["line"])
            assert theirs.equals(ours), (path.name, table)
            compared[table] = compared.get(table, 0) + ours.num_rows
    assert {"episodes", "diagnoses", "procedures", "referrals", "idents"} <= set(compared)
    assert all(compared[t] > 0 for t in ("episodes", "diagnoses", "procedures", "idents"))
    assert {encoding_of(p.read_bytes()) for p in files} == {"UTF-8", "ISO-8859-1"}
