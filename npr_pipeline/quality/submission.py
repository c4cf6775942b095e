"""Content validation of deliveries (an ord and its ide): results, findings, XPR_ERR.

Set-based: one DuckDB session checks every pending delivery at once (views over all their lake
files), then results and violating records are split per delivery and written as Parquet under
``HOME/quality``, with an XPR_ERR report per submission. A delivery is pending while its results
file is missing, so a run killed halfway simply leaves work for the next one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from npr_pipeline.atomic import atomic_path, write_text
from npr_pipeline.feedback.reports import Finding, SubmissionInfo, write_xpr_err
from npr_pipeline.home import Home
from npr_pipeline.intake.ledger import LedgerRecord
from npr_pipeline.intake.tables import IDE_TABLES, ORD_TABLES
from npr_pipeline.lake import lake_file
from npr_pipeline.quality.catalogue import Check, load_catalogue
from npr_pipeline.quality.sql_engine import register_tables, run_checks
from npr_pipeline.registry import current_registry

EXAMPLES = 10_000
BATCH = 250
EPISODE_TABLES = ("episodes", "diagnoses", "procedures")


@dataclass(frozen=True)
class Delivery:
    """An ord and, once it has arrived, the ide of the same unit and period.

    Content rules of the ord run as soon as it is accepted; the rules that compare the two
    messages run when the ide is there too (the delivery is then checked again).
    """

    ord: LedgerRecord
    ide: LedgerRecord | None


@dataclass(frozen=True)
class QualityOutcome:
    """Findings of one delivery, for the intake summary."""

    errors: int
    warnings: int


def results_path(home: Home, ord_record: LedgerRecord, kind: str) -> Path:
    """``quality/year=Y/unit=U/<ord submission id>.<kind>.parquet`` (results or violations)."""
    return quality_file(home, ord_record.year, ord_record.unit, ord_record.submission_id, kind)


def quality_file(home: Home, year: int, unit: str, ord_sid: str, kind: str) -> Path:
    """Where a delivery's quality results or violations are."""
    return home.root / "quality" / f"year={year}" / f"unit={unit}" / f"{ord_sid}.{kind}.parquet"


def not_yet_checked(home: Home, deliveries: list[Delivery]) -> list[Delivery]:
    """Deliveries never checked, or checked before their ide arrived."""
    todo = []
    for delivery in deliveries:
        marker = _marker(home, delivery.ord)
        if not marker.exists():
            todo.append(delivery)
            continue
        checked_with = json.loads(marker.read_text(encoding="utf-8"))["ide_sid"]
        if delivery.ide is not None and checked_with != delivery.ide.submission_id:
            todo.append(delivery)
    return todo


def _marker(home: Home, ord_record: LedgerRecord) -> Path:
    """Written last for a delivery: which ide it was checked with (the commit mark)."""
    return results_path(home, ord_record, "results").with_suffix(".json")


def check_deliveries(
    home: Home, deliveries: list[Delivery], allow_synthetic_fnr: bool
) -> dict[str, QualityOutcome]:
    """Run the catalogue on deliveries, in batches; outcome per ord and ide submission id."""
    outcomes: dict[str, QualityOutcome] = {}
    for start in range(0, len(deliveries), BATCH):
        outcomes |= _check_batch(home, deliveries[start : start + BATCH], allow_synthetic_fnr)
    return outcomes


def _check_batch(
    home: Home, batch: list[Delivery], allow_synthetic_fnr: bool
) -> dict[str, QualityOutcome]:
    checks = list(load_catalogue())
    con = duckdb.connect()
    try:
        register_tables(con, _files(home, batch))
        _register_deliveries(con, batch)
        results, violations = run_checks(con, checks, allow_synthetic_fnr)
    finally:
        con.close()
    by_check = {c.id: c for c in checks}
    registry = current_registry(home)
    names = dict(zip(registry["reshID"], registry["name"], strict=True))
    outcomes: dict[str, QualityOutcome] = {}
    for delivery in batch:
        parts = [(delivery.ord, ORD_TABLES)]
        if delivery.ide is not None:
            parts.append((delivery.ide, IDE_TABLES))
        sids = [record.submission_id for record, _ in parts]
        own_results = results[results["submission_id"].isin(sids)]
        own = violations[violations["submission_id"].isin(sids)]
        _write(results_path(home, delivery.ord, "violations"), own)
        for record, tables in parts:
            rows = own[own["table"].isin(tables)]
            info = _info(record, names.get(record.unit))
            _report(home, info, own_results, rows, by_check, tables)
            mine = own[own["submission_id"] == record.submission_id]
            outcomes[record.submission_id] = QualityOutcome(
                errors=int((mine["severity"] == "error").sum()),
                warnings=int((mine["severity"] == "warning").sum()),
            )
        frame = own_results.assign(
            unit=delivery.ord.unit,
            period_to=delivery.ord.period_to,
            ord_sid=delivery.ord.submission_id,
            ide_sid=delivery.ide.submission_id if delivery.ide else None,
        ).astype({"ide_sid": "string"})
        _write(results_path(home, delivery.ord, "results"), frame)
        write_text(
            _marker(home, delivery.ord),
            json.dumps({"ide_sid": delivery.ide.submission_id if delivery.ide else None}),
            durable=False,
        )
    return outcomes


def _files(home: Home, batch: list[Delivery]) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {t: [] for t in (*ORD_TABLES, *IDE_TABLES)}
    for d in batch:
        for table in ORD_TABLES:
            files[table].append(lake_file(home, table, d.ord.year, d.ord.unit, d.ord.submission_id))
        if d.ide is not None:
            files["idents"].append(
                lake_file(home, "idents", d.ide.year, d.ide.unit, d.ide.submission_id)
            )
    return files


def _register_deliveries(con: duckdb.DuckDBPyConnection, batch: list[Delivery]) -> None:
    records = [r for d in batch for r in (d.ord, d.ide) if r is not None]
    submissions = pa.table(
        {
            "submission_id": [r.submission_id for r in records],
            "extracted": [date.fromisoformat(r.extracted) for r in records],
            "period_to": [date.fromisoformat(r.period_to) for r in records],
        }
    )
    paired = [d for d in batch if d.ide is not None]
    pairs = pa.table(
        {
            "ord_sid": pa.array([d.ord.submission_id for d in paired], pa.string()),
            "ide_sid": pa.array([d.ide.submission_id for d in paired], pa.string()),
        }
    )
    for name, table in (("ref_submission", submissions), ("ref_pair", pairs)):
        con.register(f"_{name}", table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _{name}")


def _write(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, durable=False) as tmp:
        frame.to_parquet(tmp, index=False)


def _report(
    home: Home,
    info: SubmissionInfo,
    results: pd.DataFrame,
    violations: pd.DataFrame,
    by_check: dict[str, Check],
    tables: tuple[str, ...],
) -> None:
    mine = results[(results["table"].isin(tables)) & (results["unexpected_count"] > 0)]
    summary = [
        {
            "rule": row.check_id,
            "severity": row.severity,
            "category": row.category,
            "count": int(row.unexpected_count),
            "share": float(row.share),
            "message": by_check[row.check_id].message,
            "fix": by_check[row.check_id].fix,
        }
        for row in mine.itertuples(index=False)
    ]
    findings = [
        Finding(
            rule=row.check_id,
            severity=row.severity,
            message=by_check[row.check_id].message,
            fix=by_check[row.check_id].fix,
            episode_id=row.record_id if row.table in EPISODE_TABLES else None,
            patient_nr=row.pasientNr,
            line=None if pd.isna(row.line) else int(row.line),
        )
        for row in violations.head(EXAMPLES).itertuples(index=False)
    ]
    write_xpr_err(home.feedback / info.submission_id, info, findings, summary)


def _info(record: LedgerRecord, unit_name: str | None) -> SubmissionInfo:
    return SubmissionInfo(
        submission_id=record.submission_id,
        file=record.file,
        received=record.received,
        status=str(record.status),
        unit=record.unit,
        unit_name=unit_name,
        message_type=record.message_type,
        version=record.version,
        period=f"{record.period_from}/{record.period_to}",
        lopenr=record.lopenr,
        checksum=record.checksum,
        size=record.size,
        episodes=record.episodes,
        patients=record.patients,
    )
