"""The headline numbers of a period's current deliveries, for people reading a terminal."""

from __future__ import annotations

from npr_pipeline.home import Home
from npr_pipeline.warehouse import reader

QUERIES = {
    "ventetider": """
        SELECT 'completed waits (all)' AS measure,
               printf('%d, mean %.1f d, median %.1f d, fristbrudd %.1f %% (%s)',
                      CAST(n AS INTEGER), mean_days, median_days, fristbrudd_pct, status)
        FROM ventetider_current WHERE period = ? AND group_type = 'all' AND measure = 'avviklet'
        UNION ALL
        SELECT 'still waiting at ' || snapshot_date,
               printf('%d, mean %.1f d, fristbrudd %.1f %%', CAST(n AS INTEGER), mean_days,
                      fristbrudd_pct)
        FROM ventetider_current WHERE period = ? AND group_type = 'all' AND measure = 'ventende'
    """,
    "isf": """
        SELECT 'stays / contacts / points',
               printf('%d / %d / %.1f', stays, contacts, points)
        FROM isf_summary_current WHERE period = ? AND level = 'all' AND month = 'period'
        UNION ALL
        SELECT 'refund (NOK)' || CASE WHEN rate_assumed THEN ', assumed rate' ELSE '' END,
               printf('%,.2f', refund)
        FROM isf_summary_current WHERE period = ? AND level = 'all' AND month = 'period'
        UNION ALL
        SELECT 'left out: paid by the patient or an insurer',
               printf('%d stays and contacts', left_out_paid_privately)
        FROM isf_summary_current WHERE period = ? AND level = 'all' AND month = 'period'
        UNION ALL
        SELECT 'of which at public / private units',
               printf('%d / %d',
                      coalesce(sum(left_out_paid_privately) FILTER (WHERE key = 'public'), 0),
                      coalesce(sum(left_out_paid_privately) FILTER (WHERE key = 'private'), 0))
        FROM isf_summary_current WHERE period = ? AND level = 'ownership' AND month = 'period'
    """,
    "gjestepasient": """
        SELECT 'guest-patient cases / settlement (NOK)',
               printf('%d / %,.2f', coalesce(sum(cases), 0), coalesce(sum(amount), 0))
        FROM gjestepasient_matrix_current WHERE period = ?
        UNION ALL
        SELECT 'left out: paid by the patient or an insurer',
               printf('%d stays and contacts', coalesce(sum(cases), 0))
        FROM gjestepasient_apart_current WHERE period = ? AND category = 'paid_privately'
    """,
    "kjernejournal": """
        SELECT 'contact rows / persons',
               printf('%d / %d', rows, persons)
        FROM kjernejournal_counts_current WHERE period = ?
    """,
}


def headlines(home: Home, period: str) -> list[tuple[str, str, str]]:
    """(step, measure, value) rows for the deliveries that exist for ``period``."""
    found: list[tuple[str, str, str]] = []
    with reader(home) as con:
        tables = {
            name
            for (name,) in con.execute(
                "SELECT view_name FROM duckdb_views() WHERE database_name = current_database()"
            ).fetchall()
        }
        for step, query in QUERIES.items():
            needed = {"ventetider": "ventetider_current", "isf": "isf_summary_current",
                      "gjestepasient": "gjestepasient_matrix_current",
                      "kjernejournal": "kjernejournal_counts_current"}[step]  # fmt: skip
            if needed not in tables:
                continue
            rows = con.execute(query, [period] * query.count("?")).fetchall()
            found += [(step, measure, value) for measure, value in rows]
    return found
