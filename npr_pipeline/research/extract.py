"""``npr extract``: one approved project's extract for its periods, with a manifest.

Per period the extract reads the period's production inputs (``open_period``: current covering
submissions, error records left out), gives every person the project's pseudonym (the
fødselsnummer is read from the vault in Python, hashed, and never enters the SQL session),
selects the cohort in DuckDB and writes one row-level file (episodes, stays or persons) and the
spec's aggregated tables, small cells suppressed. Files are deterministic: rows sorted, columns
in the spec's order, explicit types, no timestamps or library versions inside them, so the same
spec on the same data gives byte-identical files. The manifest says what went in (spec and its
checksum, submissions and their checksums, current delivery versions), who ran it and when,
what was suppressed, and the checksum of every file.
"""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from npr_pipeline import duck, suppression
from npr_pipeline.atomic import atomic_path, write_bytes, write_text
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production import isf
from npr_pipeline.production.inputs import PeriodInput
from npr_pipeline.production.run import open_period, submission_lineage
from npr_pipeline.research.dictionary import DICTIONARY, ColumnType, Dictionary, dictionary
from npr_pipeline.research.pseudonym import key_id, load_key, pseudonym
from npr_pipeline.research.spec import AGE_BANDS, Spec, TableSpec, check_periods, load_spec
from npr_pipeline.research.spec import validate_spec as validate

DATE_FORMATS = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
ARROW_TYPES = {ColumnType.integer: pa.int64(), ColumnType.float: pa.float64()}
LEVEL_TABLES = {"episode": "rx_episodes", "stay": "rx_stays", "person": "rx_persons"}
FILE_NAMES = {"episode": "episodes", "stay": "stays", "person": "persons"}
TOTAL = "Total"
MISSING = "(missing)"


@dataclass
class ExtractResult:
    """What one run wrote."""

    out: Path
    manifest: Path
    files: list[dict[str, object]] = field(default_factory=list)
    suppressed: int = 0

    def as_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "manifest": str(self.manifest),
            "files": self.files,
            "suppressed_cells": self.suppressed,
        }


def run_extract(home: Home, spec_path: Path, out: Path) -> ExtractResult:
    """Validate the spec against the dictionary and the data, then write the extract."""
    spec = load_spec(spec_path)
    catalogue = dictionary()
    validate(spec, catalogue)
    check_periods(spec, home)
    key = load_key(home)
    out.mkdir(parents=True, exist_ok=True)
    _remove_previous(out)
    files: list[dict[str, object]] = []
    tables: list[dict[str, object]] = []
    periods: list[dict[str, object]] = []
    for period in spec.parsed_periods:
        con, inputs = open_period(home, period)
        try:
            without_identity = _build(con, spec, key, period)
            if spec.level != "aggregate":
                frame = _rows(con, spec, spec.level, spec.variables, catalogue)
                name = f"{FILE_NAMES[spec.level]}_{period}"
                files.append(_write(out, name, frame, spec, period, "rows"))
            for table in spec.tables:
                frame, counts = _aggregate(con, spec, table, catalogue)
                files.append(_write(out, f"{table.name}_{period}", frame, spec, period, "table"))
                tables.append({"file": files[-1]["file"], **counts})
        finally:
            con.close()
        periods.append(_lineage(home, period, inputs, without_identity))
    manifest = _manifest(spec, spec_path, key, files, tables, periods)
    target = out / "manifest.json"
    write_text(target, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    hidden = sum(int(t["primary"]) + int(t["secondary"]) for t in tables)
    return ExtractResult(out, target, files, hidden)


def _remove_previous(out: Path) -> None:
    """Files of an earlier run into the same folder go, so no stale file sits beside new ones."""
    previous = out / "manifest.json"
    if previous.exists():
        for entry in json.loads(previous.read_text(encoding="utf-8")).get("files", []):
            (out / Path(str(entry["file"])).name).unlink(missing_ok=True)
        previous.unlink()


def _build(con: duckdb.DuckDBPyConnection, spec: Spec, key: bytes, period: Period) -> int:
    """Temp tables ``rx_episodes``, ``rx_stays``, ``rx_persons``; returns episodes left out.

    Episodes without an identity in the vault have no person key and are left out (counted).
    """
    idents = con.execute("SELECT DISTINCT unit, pid, fid FROM idents ORDER BY ALL").fetchall()
    keys = pd.DataFrame(
        [(unit, pid, pseudonym(key, spec.project, fid)) for unit, pid, fid in idents],
        columns=["unit", "pid", "person_key"],
    )
    con.register("_rx_keys", keys)
    con.execute("CREATE OR REPLACE TEMP TABLE rx_keys AS SELECT * FROM _rx_keys")
    con.unregister("_rx_keys")
    start, end = (d.isoformat() for d in period.window)
    con.execute(_base_sql(start, end, _cohort_sql(spec)))
    isf.grade(con)
    con.execute(_stays_sql(start, end))
    con.execute(_persons_sql(period.end.year))
    row = con.execute(
        """SELECT count(*) FROM episodes e WHERE CAST(e."utDatoTid" AS DATE)
                  BETWEEN CAST(? AS DATE) AND CAST(? AS DATE)
             AND NOT EXISTS (SELECT 1 FROM rx_keys k
                             WHERE k.unit = e.unit AND k.pid = e."pasientNr")""",
        [start, end],
    ).fetchall()
    return int(row[0][0])


def _age_band(age: str) -> str:
    cases = " ".join(f"WHEN {age} <= {high} THEN '{label}'" for label, _, high in AGE_BANDS)
    return f"CASE WHEN {age} IS NULL OR {age} < 0 THEN NULL {cases} END"


def _base_sql(start: str, end: str, matches: str) -> str:
    """Every episode with a person key, its variables, whether it is in the window and cohort."""
    return f"""
CREATE OR REPLACE TEMP TABLE rx_base AS
WITH conditions AS (
  SELECT submission_id, "episodeID",
         string_agg("kodeNr", ' ' ORDER BY "tilstNr", "kodeNr") AS conditions,
         min("kodeNr") FILTER (WHERE "tilstNr" = 1) AS main_condition
  FROM diagnoses GROUP BY ALL
), procedure_list AS (
  SELECT submission_id, "episodeID",
         string_agg("kodeNr", ' ' ORDER BY seq, "kodeNr") AS procedure_codes
  FROM procedures GROUP BY ALL
), episode_rows AS (
  SELECT k.person_key, e.submission_id, e.unit, e."episodeID",
         p.kjonn AS sex, p.fodselsar AS birth_year,
         year(e."innDatoTid") - p.fodselsar AS age,
         e."komNrHjem" AS home_municipality, nullif(c.rhf_code, '') AS home_rhf,
         e."innDatoTid" AS episode_start, e."utDatoTid" AS episode_end,
         e.omsorgsniva AS care_level, e.fagomrade, e."innmateHast" AS urgency,
         e."kontaktType" AS contact_type, d.main_condition, d.conditions, pr.procedure_codes,
         e.unit AS treating_unit, e."reshID" AS department, u.rhf AS treating_rhf, u.sector,
         u.ownership,
         date_diff('day', CAST(e."innDatoTid" AS DATE), CAST(e."utDatoTid" AS DATE))
           AS length_of_stay_days,
         CAST(e."utDatoTid" AS DATE) BETWEEN DATE '{start}' AND DATE '{end}' AS in_window
  FROM episodes e
  JOIN rx_keys k ON k.unit = e.unit AND k.pid = e."pasientNr"
  LEFT JOIN patients p ON p.submission_id = e.submission_id AND p."pasientNr" = e."pasientNr"
  LEFT JOIN ref_municipalities c ON c.komnr = e."komNrHjem"
  LEFT JOIN ref_units u ON u."reshID" = e.unit
  LEFT JOIN conditions d ON d.submission_id = e.submission_id AND d."episodeID" = e."episodeID"
  LEFT JOIN procedure_list pr ON pr.submission_id = e.submission_id
       AND pr."episodeID" = e."episodeID"
)
SELECT *, {_age_band("age")} AS age_band FROM episode_rows;
CREATE OR REPLACE TEMP TABLE rx_base AS SELECT *, ({matches}) AS matches FROM rx_base b;
CREATE OR REPLACE TEMP TABLE rx_episodes AS SELECT * FROM rx_base WHERE in_window AND matches;
"""


def _quoted(values: list[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def _prefixes(column: str, prefixes: list[str]) -> str:
    return " OR ".join(f"starts_with({column}, '{p}')" for p in prefixes)


def _cohort_sql(spec: Spec) -> str:
    """The cohort filters as one predicate over ``rx_base b`` (values validated before)."""
    cohort = spec.cohort
    parts = ["TRUE"]
    if cohort.main_condition:
        parts.append(_prefixes("coalesce(b.main_condition, '')", cohort.main_condition))
    for table, prefixes in (("diagnoses", cohort.any_condition), ("procedures", cohort.procedures)):
        if prefixes:
            match = _prefixes('x."kodeNr"', prefixes)
            parts.append(
                f"EXISTS (SELECT 1 FROM {table} x WHERE x.submission_id = b.submission_id "
                f'AND x."episodeID" = b."episodeID" AND ({match}))'
            )
    for field_name, column in (
        ("age_bands", "age_band"),
        ("sex", "sex"),
        ("home_rhf", "home_rhf"),
        ("treating_rhf", "treating_rhf"),
        ("care_level", "care_level"),
        ("sector", "sector"),
        ("ownership", "ownership"),
    ):
        values = getattr(cohort, field_name)
        if values:
            parts.append(f"b.{column} IN ({_quoted(values)})")
    return " AND ".join(f"({p})" for p in parts)


def _stays_sql(start: str, end: str) -> str:
    """ISF's stays and contacts (same rule as the delivery) that hold a cohort episode."""
    return f"""
CREATE OR REPLACE TEMP TABLE rx_stays AS
WITH members AS (
  SELECT unit, activity_id, unnest(string_split(episodes, ' ')) AS "episodeID" FROM isf_detail
), hit AS (
  SELECT DISTINCT m.unit, m.activity_id FROM members m
  JOIN rx_base b ON b.unit = m.unit AND b."episodeID" = m."episodeID" AND b.matches
)
SELECT f.person_key, f.sex, f.birth_year, year(s.start_time) - f.birth_year AS age,
       {_age_band("(year(s.start_time) - f.birth_year)")} AS age_band,
       f.home_municipality, f.home_rhf, s.kind AS stay_kind, s.start_time AS stay_start,
       s.end_time AS stay_end, s.episode_count, f.care_level, f.fagomrade,
       s.main_code AS main_condition, f.treating_unit, f.department, f.treating_rhf, f.sector,
       f.ownership, s.drg, CAST(s.points AS DOUBLE) AS drg_points,
       date_diff('day', CAST(s.start_time AS DATE), CAST(s.end_time AS DATE))
         AS length_of_stay_days
FROM isf_detail s
JOIN hit h ON h.unit = s.unit AND h.activity_id = s.activity_id
JOIN rx_base f ON f.unit = s.unit AND f."episodeID" = s.activity_id
WHERE CAST(s.end_time AS DATE) BETWEEN DATE '{start}' AND DATE '{end}';
"""


def _persons_sql(year: int) -> str:
    """One row per person with a cohort episode; attributes from the latest such episode."""
    latest = 'episode_start, unit, "episodeID"'
    return f"""
CREATE OR REPLACE TEMP TABLE rx_persons AS
WITH people AS (
  SELECT person_key,
         arg_max(sex, ({latest})) AS sex, arg_max(birth_year, ({latest})) AS birth_year,
         arg_max(home_municipality, ({latest})) AS home_municipality,
         arg_max(home_rhf, ({latest})) AS home_rhf,
         count(*) AS episode_count, min(episode_start) AS first_contact,
         max(episode_end) AS last_contact
  FROM rx_episodes GROUP BY person_key
)
SELECT *, {year} - birth_year AS age, {_age_band(f"({year} - birth_year)")} AS age_band
FROM people;
"""


def _expression(name: str, spec: Spec, catalogue: Dictionary) -> str:
    """The output value of a variable: dates at the approved precision, as text."""
    if catalogue.variables[name].is_date:
        return f"strftime({name}, '{DATE_FORMATS[spec.date_precision]}')"
    return name


def _arrow_type(name: str, catalogue: Dictionary) -> pa.DataType:
    return ARROW_TYPES.get(catalogue.variables[name].type, pa.string())


def _rows(
    con: duckdb.DuckDBPyConnection,
    spec: Spec,
    level: str,
    names: list[str],
    catalogue: Dictionary,
) -> pa.Table:
    """The level's rows with the spec's variables, in the spec's order, sorted."""
    columns = ", ".join(f"{_expression(n, spec, catalogue)} AS {n}" for n in names)
    rows = con.execute(f"SELECT {columns} FROM {LEVEL_TABLES[level]} ORDER BY ALL").fetchall()
    values = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    schema = pa.schema([pa.field(n, _arrow_type(n, catalogue)) for n in names])
    arrays = [pa.array(list(v), type=f.type) for v, f in zip(values, schema, strict=True)]
    return pa.Table.from_arrays(arrays, schema=schema)


def _aggregate(
    con: duckdb.DuckDBPyConnection, spec: Spec, table: TableSpec, catalogue: Dictionary
) -> tuple[pa.Table, dict[str, object]]:
    """Counts (and sums, means) per cell with margins, small cells suppressed and marked."""
    dims = table.dimensions
    measures = list(dict.fromkeys(table.sum + table.mean))
    select = [
        f"coalesce(CAST({_expression(d, spec, catalogue)} AS VARCHAR), '{MISSING}') AS {d}"
        for d in dims
    ]
    select += [f"sum({m}) AS sum_{m}, count({m}) AS n_{m}" for m in measures]
    cells = con.execute(
        f"SELECT {', '.join(select)}, count(*) AS n FROM {LEVEL_TABLES[table.unit]} "
        "GROUP BY ALL ORDER BY ALL"
    ).df()
    row_values = sorted(cells[dims[0]].unique())
    col_values = sorted(cells[dims[1]].unique()) if len(dims) == 2 else [TOTAL]
    if len(dims) == 1:
        cells["_col"] = TOTAL
    col_key = dims[1] if len(dims) == 2 else "_col"

    def grid(value: str) -> np.ndarray:
        wide = cells.pivot_table(
            index=dims[0], columns=col_key, values=value, aggfunc="sum", fill_value=0
        )
        wide = wide.reindex(index=row_values, columns=col_values, fill_value=0)
        return suppression.with_margins(wide.to_numpy(dtype=float))[0]

    counts = np.zeros((len(row_values), len(col_values)), dtype=np.int64)
    if len(cells):
        counts = grid("n").astype(np.int64)[: len(row_values), : len(col_values)]
    result = suppression.suppress(counts, spec.min_count)
    labels_r = row_values + ([TOTAL] if len(row_values) > 1 else [])
    labels_c = col_values + ([TOTAL] if len(col_values) > 1 and len(dims) == 2 else [])
    out: dict[str, list] = {d: [] for d in dims}
    out["n"], out["suppression"] = [], []
    sums = {m: grid(f"sum_{m}") if len(cells) else None for m in measures}
    nonnull = {m: grid(f"n_{m}") if len(cells) else None for m in measures}
    for m in table.sum:
        out[f"sum_{m}"] = []
    for m in table.mean:
        out[f"mean_{m}"] = []
    for i, r in enumerate(labels_r):
        for j, c in enumerate(labels_c):
            hidden = bool(result.hidden[i, j])
            out[dims[0]].append(r)
            if len(dims) == 2:
                out[dims[1]].append(c)
            out["n"].append(None if hidden else int(result.values[i, j]))
            mark = "primary" if result.primary[i, j] else "secondary" if hidden else ""
            out["suppression"].append(mark)
            for m in table.sum:
                out[f"sum_{m}"].append(None if hidden else round(float(sums[m][i, j]), 4))
            for m in table.mean:
                n = float(nonnull[m][i, j])
                value = round(float(sums[m][i, j]) / n, 2) if n else None
                out[f"mean_{m}"].append(None if hidden else value)
    order = [*dims, "n", *[f"sum_{m}" for m in table.sum], *[f"mean_{m}" for m in table.mean]]
    types = {"n": pa.int64(), **{k: pa.float64() for k in order if k.startswith(("sum_", "mean_"))}}
    schema = pa.schema([pa.field(k, types.get(k, pa.string())) for k in [*order, "suppression"]])
    frame = pa.Table.from_arrays(
        [pa.array(out[f.name], type=f.type) for f in schema], schema=schema
    )
    summary = {
        "table": table.name,
        "dimensions": dims,
        "unit": table.unit,
        "threshold": spec.min_count,
        "cells": int(result.values.size),
        "primary": int(result.primary.sum()),
        "secondary": int(result.secondary.sum()),
    }
    return frame, summary


def _write(
    out: Path, stem: str, frame: pa.Table, spec: Spec, period: Period, kind: str
) -> dict[str, object]:
    """Write one file deterministically (no schema metadata, fixed writer options)."""
    frame = frame.replace_schema_metadata(None)
    if spec.format == "parquet":
        target = out / f"{stem}.parquet"
        with atomic_path(target) as tmp:
            pq.write_table(frame, tmp, compression="zstd", store_schema=False)
    else:
        target = out / f"{stem}.csv"
        text = frame.to_pandas().to_csv(index=False, lineterminator="\n", float_format="%.4f")
        write_bytes(target, text.encode("utf-8"))
    data = target.read_bytes()
    return {
        "file": target.name,
        "period": str(period),
        "kind": kind,
        "rows": frame.num_rows,
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def _lineage(
    home: Home, period: Period, inputs: PeriodInput, without_identity: int
) -> dict[str, object]:
    """The submissions (with checksums) the period was read from, and the current deliveries."""
    submissions = submission_lineage(inputs)
    start, end = period.window
    return {
        "period": str(period),
        "window": [start.isoformat(), end.isoformat()],
        "submissions": submissions,
        "delivery_versions": _delivery_versions(home, str(period)),
        "episodes_without_identity_left_out": without_identity,
    }


def _delivery_versions(home: Home, period: str) -> list[dict[str, object]] | str:
    """The newest delivery version per step for the period, as production published it."""
    if not home.warehouse.exists():
        return []
    try:
        con = duck.connect(home.warehouse, read_only=True)
    except duckdb.Error as exc:  # a writer holds the file: say so rather than fail
        return f"unavailable: {exc}"
    try:
        tables = {
            t
            for (t,) in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
            ).fetchall()
        }
        if "delivery_versions" not in tables:
            return []
        rows = con.execute(
            """SELECT step, version, run_id, submissions FROM delivery_versions v
               WHERE period = ? AND version = (SELECT max(version) FROM delivery_versions w
                                               WHERE w.step = v.step AND w.period = v.period)
               ORDER BY step""",
            [period],
        ).fetchall()
    finally:
        con.close()
    return [
        {
            "step": step,
            "version": int(version),
            "run_id": run_id,
            "submissions": sorted(s["submission_id"] for s in json.loads(subs or "[]")),
        }
        for step, version, run_id, subs in rows
    ]


def _manifest(
    spec: Spec,
    spec_path: Path,
    key: bytes,
    files: list[dict[str, object]],
    tables: list[dict[str, object]],
    periods: list[dict[str, object]],
) -> dict[str, object]:
    return {
        "project": spec.project,
        "title": spec.title,
        "approval": spec.approval,
        "spec_file": spec_path.name,
        "spec_sha256": hashlib.sha256(spec_path.read_bytes()).hexdigest(),
        "spec": spec.model_dump(mode="json"),
        "dictionary_sha256": hashlib.sha256(DICTIONARY.read_bytes()).hexdigest(),
        "run_by": getpass.getuser(),
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "pseudonym": {
            "method": "HMAC-SHA256(key, project id + fødselsnummer)",
            "key_id": key_id(key),
        },  # fmt: skip
        "date_precision": spec.date_precision,
        "periods": periods,
        "suppression": {
            "publication": spec.publication,
            "threshold": spec.min_count,
            "method": "primary (1..threshold-1, margins included) and secondary until no "
            "hidden value is recoverable from row or column totals",
            "tables": tables,
        },
        "files": files,
    }
