"""Gjestepasientoppgjør: guest-patient settlement between the regional health authorities.

RULES.md: the home region is the RHF of the patient's municipality (komNrHjem, via county);
the treating region is the RHF of the treating unit (for a private unit, the RHF whose
agreement it works under). A stay or contact is a guest-patient case when the two differ;
amount = its DRG points x unit price x settlement share (somatic price; share 80 % by default).
The home RHF pays the treating RHF. Patients living abroad (9000, 9900) or with an invalid
municipality are listed apart with their counts, never dropped. Built on ISF's stays and
contacts (``isf_priced``), so the two deliveries always count the same activity. Public and
private providers are kept apart, as every delivery must allow: ``ownership`` on the detail
lines, ``cases_private`` / ``amount_private`` / ``amount_public`` in the matrix and
``cases_private`` in the list apart.
"""

from __future__ import annotations

import duckdb

from npr_pipeline.periods import Period
from npr_pipeline.production.deliveries import Frame


def compute(con: duckdb.DuckDBPyConnection, period: Period) -> dict[str, Frame]:
    """``gjestepasient_matrix``, ``gjestepasient_detail`` and ``gjestepasient_apart``."""
    start, end = (d.isoformat() for d in period.window)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gp_cases AS
        SELECT p.activity_id, p.kind, p.unit, p.unit_name, p.ownership, p."pasientNr", p.month,
               p.drg, p.points, p."komNrHjem", p.rhf AS treating_rhf, c.rhf AS home_rhf,
               CASE WHEN p."komNrHjem" IN ('9000', '9900') THEN 'abroad'
                    WHEN c.rhf IS NULL THEN 'invalid_municipality' END AS apart,
               s.unit_price_nok, s.settlement_share, s.assumed AS rate_assumed,
               round(p.points * s.unit_price_nok * s.settlement_share, 2) AS amount
        FROM isf_priced p
        LEFT JOIN ref_county_rhf c ON c.county = left(p."komNrHjem", 2)
             AND p."komNrHjem" NOT IN ('0000', '9000', '9900')
        CROSS JOIN (SELECT * FROM ref_rates WHERE activity = 'somatic') s
        WHERE CAST(p.end_time AS DATE) BETWEEN DATE '{start}' AND DATE '{end}'"""
    )
    guests = "apart IS NULL AND home_rhf <> treating_rhf"
    detail = con.sql(
        f"SELECT * EXCLUDE (apart) FROM gp_cases WHERE {guests} ORDER BY month, unit, activity_id"
    ).to_arrow_table()
    matrix = con.execute(
        f"""SELECT month, treating_rhf, home_rhf, count(*) AS cases,
                   round(sum(points), 4) AS points, round(sum(amount), 2) AS amount,
                   count(*) FILTER (WHERE ownership = 'private') AS cases_private,
                   round(sum(amount) FILTER (WHERE ownership = 'private'), 2) AS amount_private,
                   round(sum(amount) FILTER (WHERE ownership <> 'private'), 2) AS amount_public,
                   bool_or(rate_assumed) AS rate_assumed
            FROM gp_cases WHERE {guests}
            GROUP BY ALL ORDER BY month, treating_rhf, home_rhf"""
    ).df()
    apart = con.execute(
        """SELECT month, treating_rhf, apart AS category, count(*) AS cases,
                  count(*) FILTER (WHERE ownership = 'private') AS cases_private,
                  round(sum(points), 4) AS points
           FROM gp_cases WHERE apart IS NOT NULL GROUP BY ALL ORDER BY ALL"""
    ).df()
    return {
        "gjestepasient_matrix": matrix,
        "gjestepasient_detail": detail,
        "gjestepasient_apart": apart,
    }
