"""What production reads for a period: views over the current covering submissions.

Per unit the current delivery whose data reach the period's end: an ord and the ide of the same
data end (in the vault), as intake's content checks paired them
(:func:`~npr_pipeline.store.lake.current_deliveries`); rows after the period's end are cut (a
later cumulative file also holds the months after it); records with an error finding are left
out and counted. Production copies no data: its views read the
part files of the lake's Delta tables (chosen from the log: committed batches, current
submissions; :mod:`npr_pipeline.store.lake`) directly, so a unit's late correction changes
production by changing which file is current, nothing else. Only the per-period quality
database that GX validates holds a materialised copy, rebuilt from the lake on every run.

Fail closed, never skip: every lake file the ledger says a chosen submission has, and every
chosen ord's violations file (checked with the current catalogue and the chosen ide) that its
quality marker says there is, must be there and readable; otherwise :class:`InputFileError`
names the file and the period is not read at all. A delivery whose marker counts no violations
has no file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.daily_inputs import (
    NO_DAILY,
    DailyInput,
    daily_violations,
    register_daily_rows,
)
from npr_pipeline.provenance import catalogue_sha256
from npr_pipeline.quality.submission import has_violations_file, marker_of, quality_file
from npr_pipeline.store.lake import (
    ORD_TABLES,
    current_for_period,
    parquet_source,
    part_files_by_table,
    rows_source,
    schema_of,
    table_path,
)

EPISODE_TABLES = ("episodes", "diagnoses", "procedures")
VIOLATION_TYPES = (
    ("check_id", "VARCHAR"), ("table", "VARCHAR"), ("severity", "VARCHAR"),
    ("submission_id", "VARCHAR"), ("unit", "VARCHAR"), ("pasientNr", "VARCHAR"),
    ("record_id", "VARCHAR"), ("line", "INTEGER"),
)  # fmt: skip
SQL_TYPES = {"string": "VARCHAR", "date32[day]": "DATE", "timestamp[s]": "TIMESTAMP"}


class InputFileError(RuntimeError):
    """A file the period's production must read is missing, unreadable or out of date."""


@dataclass(frozen=True)
class PeriodInput:
    """The submissions a period's production is built from (its lineage)."""

    period: Period
    ords: pd.DataFrame
    ides: pd.DataFrame
    submissions: pd.DataFrame  # their ledger rows (checksum, file, extraction date, ...)
    daily: DailyInput = NO_DAILY  # the daily units, read from the consolidated state

    @property
    def submission_ids(self) -> list[str]:
        return sorted([*self.ords["submission_id"], *self.ides["submission_id"]])


def period_input(
    ledger: pd.DataFrame,
    period: Period,
    units: list[str] | None = None,
    current: pd.DataFrame | None = None,
    daily: DailyInput = NO_DAILY,
) -> PeriodInput:
    """Current covering ord and ide submissions (optionally only of ``units``), and the daily
    units' state (``daily``) beside them.

    ``current``: ``current_for_period(ledger, period)`` when the caller has it already (the
    gate's verdict: at 65,000 units each working out costs a second)."""
    current = current_for_period(ledger, period) if current is None else current
    current = current[current["covers"].astype(bool)]
    if units is not None:
        current = current[current["unit"].isin(units)]
    ords = current[current["message_type"] == "NPR_ORD"].reset_index(drop=True)
    ides = current[current["message_type"] == "NPR_IDE"].reset_index(drop=True)
    chosen = ledger["submission_id"].isin(current["submission_id"])
    submissions = ledger[chosen].sort_values("submission_id").reset_index(drop=True)
    return PeriodInput(period, ords, ides, submissions, daily)


def register_period_views(
    con: duckdb.DuckDBPyConnection,
    home: Home,
    inputs: PeriodInput,
    materialise: bool = False,
    identity_numbers: bool = True,
) -> None:
    """Views ``episodes``, ``diagnoses``, ... and ``idents`` for the period, exclusions applied.

    ``raw_<table>`` views hold the same rows before exclusion: the monthly units' current files
    UNION ALL the daily units' consolidated state at ``inputs.daily.batch``
    (:mod:`.daily_inputs`); ``excluded`` (a temporary table, read once) the error findings of
    both.
    ``materialise=True`` creates the same relations as tables in the connection's database
    file instead: read from the lake once, then every query (GX runs dozens per period) scans
    one columnar table rather than thousands of small Parquet files and violation files.
    ``identity_numbers=False`` leaves the fødselsnummer (``idents.fid``) out of ``idents`` and
    ``raw_idents``: which patient has an identity, not the number (the snapshot's choice).
    """
    kind = "TABLE" if materialise else "TEMP VIEW"
    _excluded(con, home, inputs, "TABLE" if materialise else "TEMP TABLE")
    daily = add_daily(con, home, inputs)
    tables = {**{t: inputs.ords for t in ORD_TABLES}, "idents": inputs.ides}
    found = part_files_by_table(home, {t: s["submission_id"] for t, s in tables.items()})
    for table, submissions in tables.items():
        files = _existing(home, table, submissions, found[table])
        source = f"SELECT * FROM {rows_source(files)}" if files else _empty(table)
        if table in daily:
            source = f"{source} UNION ALL BY NAME {daily[table]}"
        columns = "* EXCLUDE (fid)" if table == "idents" and not identity_numbers else "*"
        _read(con, f"CREATE OR REPLACE {kind} raw_{table} AS SELECT {columns} FROM ({source})")
    create_filtered(con, inputs.period, kind)


def add_daily(con: duckdb.DuckDBPyConnection, home: Home, inputs: PeriodInput) -> dict[str, str]:
    """Fold the daily units' state into the session and add its error findings to
    ``excluded``; per lake table the SQL of the daily rows (none without daily units).

    Apart from the monthly part so that a snapshot can replace the daily rows alone
    (``snapshot.build_snapshot``: a correction by the daily route leaves the monthly files as
    they were)."""
    if not inputs.daily.units:
        return {}
    year = inputs.period.year
    daily = register_daily_rows(con, home, year, inputs.daily)
    con.register("_daily_violations", daily_violations(con, home, year, inputs.daily, daily))
    columns = ", ".join(f'"{c}"' for c, _ in VIOLATION_TYPES)
    con.execute(
        f"INSERT INTO excluded BY NAME SELECT {columns} FROM _daily_violations "
        "WHERE severity = 'error'"
    )
    return daily


def create_filtered(con: duckdb.DuckDBPyConnection, period: Period, kind: str) -> None:
    """``episodes``, ``diagnoses``, ... and ``idents`` from the ``raw_`` relations and
    ``excluded``: rows up to the period's end without excluded records or patients."""
    for table, select in filtered_selects(period).items():
        con.execute(f"CREATE OR REPLACE {kind} {table} AS {select}")


def filtered_selects(period: Period, scope: str = "TRUE") -> dict[str, str]:
    """Per table the SQL ``create_filtered`` makes it of, over the ``raw_`` rows that satisfy
    ``scope`` (a condition on their columns).

    Whether a row is kept depends only on rows of its own unit (its submission's records, its
    unit's patients), so a caller may refilter some units alone with a ``scope`` on ``unit``
    (``snapshot._replace_daily``: after a daily correction only the daily units' rows)."""
    end = period.end.isoformat()
    selects = {table: _filtered(table, end, scope) for table in ORD_TABLES}
    selects["idents"] = (
        f"SELECT * FROM raw_idents WHERE {scope} AND (unit, pid) NOT IN "
        "(SELECT unit, \"pasientNr\" FROM excluded WHERE \"table\" IN ('patients', 'idents'))"
    )
    return selects


def _existing(
    home: Home, table: str, submissions: pd.DataFrame, files: dict[str, Path]
) -> dict[str, Path]:
    """The submissions' part files of ``table`` (``files``, chosen from the Delta log), in the
    submissions' order: each accepted submission has one of every table of its message type,
    so a missing or unreadable one stops the run."""
    for row in submissions.itertuples(index=False):
        what = f"lake file of submission {row.submission_id} ({row.unit})"
        if row.submission_id not in files:
            raise InputFileError(f"{what} is missing from {table_path(home, table)} (the ledger "
                                 "says it exists)")  # fmt: skip
        readable(files[row.submission_id], what)
    return {sid: files[sid] for sid in submissions["submission_id"]}


def readable(path: Path, what: str, says: str = "the ledger says it exists") -> None:
    """Raise :class:`InputFileError` naming ``path`` unless its Parquet footer reads; ``says``
    why the file must be there."""
    if not path.is_file():
        raise InputFileError(f"{what} is missing: {path} ({says})")
    try:
        pq.read_metadata(path)
    except (OSError, pa.ArrowException) as exc:
        raise InputFileError(f"{what} cannot be read: {path} ({exc})") from exc


def _read(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Run a statement reading period input files; one DuckDB cannot read stops the run
    (DuckDB's message names the file)."""
    try:
        con.execute(sql)
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        raise InputFileError(f"a period input file cannot be read: {exc}") from exc


def _empty(table: str) -> str:
    """An empty relation with the lake table's columns."""
    columns = ", ".join(
        f'CAST(NULL AS {SQL_TYPES.get(str(f.type), "INTEGER")}) AS "{f.name}"'
        for f in schema_of(table)
    )
    return f"SELECT {columns} WHERE FALSE"


_RECHECK = (
    "run `npr intake` (any inbox, even an empty folder) to check deliveries with the current "
    "catalogue and their current ide"
)


def _excluded(con: duckdb.DuckDBPyConnection, home: Home, inputs: PeriodInput, kind: str) -> None:
    """Error findings of the included deliveries (their violations files), as a table.

    A table even beside views: it is small (error findings only), while its source is one
    violations file per delivery with any (~100 of ~2,000 a month) read by name; as a view every
    filtered view re-read all of them twice, when it was created and in every query. A delivery
    whose marker counts none adds no rows, as its empty file did.
    """
    year = inputs.period.year
    catalogue = catalogue_sha256()
    ide_of = dict(zip(inputs.ides["unit"], inputs.ides["submission_id"], strict=True))
    files = []
    for row in inputs.ords.itertuples(index=False):
        path = quality_file(home, year, row.unit, row.submission_id, "violations")
        marker = marker_of(home, year, row.unit, row.submission_id)
        what = f"violations file of delivery {row.submission_id} ({row.unit})"
        if marker is None or marker.get("catalogue") != catalogue:
            state = "not been checked" if marker is None else "been checked with another catalogue"
            raise InputFileError(f"{what} has {state}: {path}; {_RECHECK}")
        if marker.get("ide_sid") != ide_of.get(row.unit):
            raise InputFileError(
                f"{what} was checked with ide {marker.get('ide_sid')}, and production reads ide "
                f"{ide_of.get(row.unit)}: {path}; {_RECHECK}"
            )
        if has_violations_file(marker):
            readable(path, what, "its quality marker says it exists")
            files.append(path)
    if not files:
        columns = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in VIOLATION_TYPES)
        con.execute(f"CREATE OR REPLACE {kind} excluded AS SELECT {columns} WHERE FALSE")
        return
    wanted = ", ".join(f"'{s}'" for s in inputs.submission_ids)
    _read(
        con,
        f"CREATE OR REPLACE {kind} excluded AS SELECT * FROM "
        f"{parquet_source(files, union_by_name=True)} "
        f"WHERE severity = 'error' AND submission_id IN ({wanted})",
    )


def _filtered(table: str, end: str, scope: str = "TRUE") -> str:
    """Rows up to the period's end, without excluded records or patients, of the rows that
    satisfy ``scope`` (a condition on the ``raw_`` table's own columns)."""
    conditions = [scope]
    if table != "departments":
        conditions.append(
            '(unit, "pasientNr") NOT IN (SELECT unit, "pasientNr" FROM excluded '
            "WHERE \"table\" IN ('patients', 'idents'))"
        )
    if table in EPISODE_TABLES:
        conditions.append(
            '(submission_id, "episodeID") NOT IN (SELECT submission_id, record_id FROM excluded '
            "WHERE \"table\" IN ('episodes', 'diagnoses', 'procedures'))"
        )
        conditions.append(
            '(submission_id, "episodeID") IN (SELECT submission_id, "episodeID" FROM raw_episodes '
            f"WHERE {scope} AND CAST(\"utDatoTid\" AS DATE) <= DATE '{end}')"
        )
    if table == "referrals":
        conditions.append(f"\"mottattDato\" <= DATE '{end}'")
        conditions.append(
            '(submission_id, "henvisningsperiodeID") NOT IN (SELECT submission_id, record_id '
            "FROM excluded WHERE \"table\" = 'referrals')"
        )
    return f"SELECT * FROM raw_{table} WHERE " + " AND ".join(conditions)
