"""Identities stay in the vault: no fødselsnummer in any file under HOME outside it.

Two HOMEs: ``npr demo`` (the synthetic year, intake, a Dagster run of 2026-T1 and the
documented example extract), and a year with injected defects through intake and the period's
blocking checks (so the feedback reports, GX's Data Docs and the results page hold failing
checks on patients and identities). Every fødselsnummer of the ide files is looked for in every
file outside the vault and the restricted kjernejournal area: Parquet and DuckDB read as data
(every column of every table), everything else (logs, HTML, JSON, XML, CSV, Dagster's SQLite
files) as bytes, and Parquet and DuckDB files as bytes too.

The raw areas hold the received files as they came (the archive keeps every file ever
received, never modified; the demo's input folder is its senders' outbox; intake stages a file's
tables before they move to the lake or the vault): ide files carry fødselsnummer there by
nature, so those folders are owner-only, like the vault, and the test checks that instead.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.feedback.reports import display_files
from npr_pipeline.periods import Period
from npr_pipeline.production.input_checks import check_period
from tests.intake_files import home_copy
from tests.soak import SOAK

PROTECTED = ("vault", "restricted")  # where fødselsnummer belong
RAW = ("archive", "staging", "demo-input", "inbox")  # received bytes: owner-only
_FID = re.compile(rb'fid="([0-9]+)"')
_DIGITS = re.compile(rb"[0-9]{11,}")


def _fids(xml_files: list[Path]) -> set[str]:
    """Every fødselsnummer in the ide files, read from the XML (not from the pipeline)."""
    found = {m.decode() for path in xml_files for m in _FID.findall(path.read_bytes())}
    assert found, "no ide files: nothing to look for"
    return found


class _Scanner:
    def __init__(self, fids: set[str]) -> None:
        self.fids = fids
        self.hits: dict[str, set[str]] = {}

    def found(self) -> dict[str, int]:
        """Hits per place, counted: a failing test must not print the numbers themselves."""
        return {where: len(numbers) for where, numbers in self.hits.items()}

    def _add(self, where: str, found: set[str]) -> None:
        if found:
            self.hits.setdefault(where, set()).update(found)

    def text(self, data: bytes) -> set[str]:
        """Every 11-digit window of every run of digits that is one of the numbers."""
        found = set()
        for match in _DIGITS.finditer(data):
            run = match.group().decode()
            found |= {run[i : i + 11] for i in range(len(run) - 10)} & self.fids
        return found

    def values(self, values: list[object], integers: bool) -> set[str]:
        """Text values; integers also as 11 digits (a number that lost its leading zero)."""
        if integers:
            return {f"{v:011d}" for v in values if isinstance(v, int)} & self.fids
        return self.text("\n".join(str(v) for v in values if v is not None).encode())

    def parquet(self, path: Path, where: str) -> None:
        table = pq.read_table(path)
        for name, column in zip(table.column_names, table.columns, strict=True):
            integers = str(column.type).startswith(("int", "uint"))
            nested = pa.types.is_nested(column.type)  # e.g. a Delta checkpoint's actions
            unique = column.to_pylist() if nested else column.unique().to_pylist()
            self._add(f"{where} [{name}]", self.values(unique, integers))

    def duckdb(self, path: Path, where: str) -> None:
        con = duckdb.connect(str(path), read_only=True)
        try:
            columns = con.execute(
                "SELECT schema_name, table_name, column_name, data_type FROM duckdb_columns() "
                "WHERE table_name IN (SELECT table_name FROM duckdb_tables())"
            ).fetchall()
            for schema, table, column, kind in columns:
                values = [
                    v
                    for (v,) in con.execute(
                        f'SELECT DISTINCT "{column}" FROM "{schema}"."{table}"'
                    ).fetchall()
                ]
                integers = "INT" in kind and "[" not in kind
                if not integers:
                    values = [str(v) for v in values if v is not None]
                self._add(f"{where} [{table}.{column}]", self.values(values, integers))
        finally:
            con.close()

    def home(self, root: Path) -> int:
        """Scan every file outside the protected and raw areas; returns how many were read."""
        read = 0
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            where = str(path.relative_to(root))
            if path.relative_to(root).parts[0] in PROTECTED + RAW:
                continue
            self._add(where, self.text(path.read_bytes()))
            if path.suffix == ".parquet":
                self.parquet(path, where)
            elif path.suffix == ".duckdb":
                self.duckdb(path, where)
            read += 1
        return read


def _owner_only(root: Path) -> dict[str, str]:
    """The protected and raw folders that others could read or enter."""
    return {
        name: oct(stat.S_IMODE((root / name).stat().st_mode))
        for name in PROTECTED + RAW
        if (root / name).exists() and stat.S_IMODE((root / name).stat().st_mode) & 0o077
    }


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``npr demo`` with three units (the documented example extract included)."""
    home = tmp_path_factory.mktemp("pii-demo") / "home"
    result = CliRunner().invoke(app, ["--home", str(home), "demo", "--units", "3"])
    assert result.exit_code == 0, result.output
    assert (home / "extracts" / "demo" / "manifest.json").is_file()
    assert list((home / "restricted").rglob("*.parquet")), "the demo wrote no kjernejournal"
    return home


@pytest.fixture(scope="module")
def defects_home(received_defect_year: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A year with injected defects through intake and March's blocking checks.

    Identity checks fail in the units' XPR_ERR reports (a unit whose ide is incomplete is left
    out of the period's snapshot by the gate, so the period's own checks may all pass).
    """
    home = home_copy(received_defect_year, tmp_path_factory.mktemp("pii-defects") / "home")
    check_period(home, Period.parse("2026-03"), "run-1", max_share=1.0)
    for folder in home.feedback.iterdir():
        display_files(folder)  # what `npr feedback` and the e-mail render: scanned too
    reports = [p.read_text(encoding="utf-8") for p in home.feedback.rglob("XPR_ERR.csv")]
    assert any("fodselsnummer_valid" in r or "patient_has_ident" in r for r in reports)
    return home.root


@pytest.mark.soak
@pytest.mark.skipif(not SOAK, reason="npr demo end to end, about 25 CPU-s: make soak only")
def test_demo_holds_no_fodselsnummer_outside_the_vault(demo_home: Path) -> None:
    inbox = demo_home / "demo-input" / "inbox"  # monthly ide files and daily ident files
    fids = _fids(sorted([*inbox.glob("*_ide.xml"), *inbox.glob("*_ident_*.xml")]))
    scanner = _Scanner(fids)
    assert scanner.home(demo_home) > 100
    found = scanner.found()
    assert not found, found
    assert not _owner_only(demo_home)
    # the ide's own table is stored in the vault only, and holds every number
    assert not list((demo_home / "lake").rglob("idents"))
    vault = {
        fid
        for path in (demo_home / "vault").rglob("*.parquet")
        if "_delta_log" not in path.parts  # a Delta table's data files, not its log
        for fid in pq.read_table(path, partitioning=None).column("fid").to_pylist()
    }
    assert vault == fids


def test_defects_hold_no_fodselsnummer_outside_the_vault(
    defects_home: Path, defect_year: Path
) -> None:
    """Failing identity checks: feedback, Data Docs and the results page name records only."""
    scanner = _Scanner(_fids(sorted((defect_year / "inbox").glob("*_ide.xml"))))
    assert scanner.home(defects_home) > 100
    assert list((defects_home / "data_docs").rglob("*.html"))
    found = scanner.found()
    assert not found, found
    assert not _owner_only(defects_home)


def test_the_scan_finds_a_number_where_it_should_not_be(defect_year: Path, tmp_path: Path) -> None:
    """The scanner itself: a number in a log, a Parquet column and a DuckDB table is found."""
    fids = _fids(sorted((defect_year / "inbox").glob("*_ide.xml")))
    number = sorted(fids)[0]
    (tmp_path / "run.log").write_text(f"patient {number} failed\n", encoding="utf-8")
    with duckdb.connect(str(tmp_path / "x.duckdb")) as con:
        con.execute("CREATE TABLE t AS SELECT ? AS a, CAST(? AS BIGINT) AS b", [number, number])
        con.execute(f"COPY t TO '{tmp_path / 'x.parquet'}' (FORMAT parquet)")
    scanner = _Scanner(fids)
    scanner.home(tmp_path)
    assert set(scanner.found()) >= {
        "run.log",
        "x.parquet [a]",
        "x.parquet [b]",
        "x.duckdb [t.a]",
        "x.duckdb [t.b]",
    }
