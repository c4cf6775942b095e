"""A warehouse written by an older release takes the next version's columns and types."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pyarrow as pa

from npr_pipeline.production.deliveries import _insert


def test_older_table_gains_new_columns_and_exact_money() -> None:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE isf_summary AS SELECT 'u1' AS unit, 59.05::DOUBLE AS refund, "
        "'2026-T1' AS period, 1 AS version"
    )
    con.execute(
        "CREATE VIEW isf_summary_current AS SELECT * FROM isf_summary t WHERE version = "
        "(SELECT max(version) FROM isf_summary s WHERE s.period = t.period)"
    )
    new = pa.table(
        {
            "unit": ["u1"],
            "refund": pa.array([Decimal("59.06")], pa.decimal128(18, 2)),
            "left_out_paid_privately": pa.array([2], pa.int64()),
            "period": ["2026-T1"],
            "version": pa.array([2], pa.int32()),
        }
    )
    _insert(con, "isf_summary", new)
    types = dict(
        con.execute("SELECT column_name, column_type FROM (DESCRIBE isf_summary)").fetchall()
    )
    assert types["refund"] == "DECIMAL(18,2)"
    rows = con.execute(
        "SELECT version, refund, left_out_paid_privately FROM isf_summary ORDER BY version"
    ).fetchall()
    assert rows == [(1, Decimal("59.05"), None), (2, Decimal("59.06"), 2)]
    assert con.execute("SELECT refund FROM isf_summary_current").fetchall() == [(Decimal("59.06"),)]
