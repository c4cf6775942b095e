"""Gjestepasientoppgjør: guest-patient settlement between the regional health authorities.

RULES.md: the home region is the RHF of the patient's municipality (komNrHjem, looked up in the
municipality list); the treating region is the RHF of the treating unit (for a private unit, the
RHF whose agreement it works under). A stay or contact is a guest-patient case when the two
differ; amount = its DRG points x unit price x settlement share, at the unit price ISF uses for
the same stay or contact (its activity kind: a mental-health or TSB contact or day treatment at
the mental-health/TSB price, never the somatic one), in DECIMAL, each line rounded half up to
øre, every total the sum of its lines. The home RHF pays the treating RHF. Patients living abroad
(9000, 9900) or with an invalid municipality (0000 or any number not in the list, whatever its
first two digits) are listed apart with their counts, never dropped and never guessed into a
region. Stays and contacts the patient or an insurer pays (``paid_privately``, from ISF) are
left out; those that would have been a case or listed apart are counted in the list apart as
``paid_privately``. Built on ISF's stays and contacts (``isf_priced``), so the two deliveries
always count the same activity and price it the same way. Public and private providers are kept
apart, as every delivery must allow: ``ownership`` on the detail lines, ``cases_private`` /
``amount_private`` / ``amount_public`` in the matrix and ``cases_private`` in the list apart.
"""

from __future__ import annotations

import duckdb

from npr_pipeline.periods import Period
from npr_pipeline.production.deliveries import Frame
from npr_pipeline.production.isf import MONEY


def compute(con: duckdb.DuckDBPyConnection, period: Period) -> dict[str, Frame]:
    """``gjestepasient_matrix``, ``gjestepasient_detail`` and ``gjestepasient_apart``.

    Needs ``isf_priced`` (``isf.price`` first). Money is DECIMAL(18, 2) to the warehouse.
    """
    start, end = (d.isoformat() for d in period.window)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE gp_cases AS
        WITH placed AS (
          SELECT p.*, m.kind AS home_kind, nullif(m.rhf_code, '') AS home_rhf,
                 nullif(p.rhf, '') AS treating_rhf
          FROM isf_priced p LEFT JOIN ref_municipalities m ON m.komnr = p."komNrHjem"
          WHERE CAST(p.end_time AS DATE) BETWEEN DATE '{start}' AND DATE '{end}'
        )
        SELECT activity_id, kind, unit, unit_name, ownership, "pasientNr", month, drg,
               CAST(points AS DOUBLE) AS points, "komNrHjem", treating_rhf, home_rhf,
               CASE WHEN treating_rhf IS NULL THEN 'no_treating_region'
                    WHEN home_kind = 'abroad' THEN 'abroad'
                    WHEN home_rhf IS NULL THEN 'invalid_municipality' END AS apart,
               paid_privately, points AS exact_points, activity, unit_price_nok,
               settlement_share, rate_assumed,
               CAST(round(points * unit_price_nok * settlement_share, 2) AS {MONEY}) AS amount
        FROM placed"""
    )
    # a case: publicly funded and placed in two different regions; left out of the settlement
    # because the patient or an insurer pays: what would otherwise be a case or listed apart
    counted = "(apart IS NOT NULL OR home_rhf <> treating_rhf)"
    guests = "NOT paid_privately AND apart IS NULL AND home_rhf <> treating_rhf"
    detail = con.sql(
        f"""SELECT * EXCLUDE (apart, paid_privately, exact_points) FROM gp_cases
            WHERE {guests} ORDER BY month, unit, activity_id"""
    ).to_arrow_table()
    matrix = con.sql(
        f"""SELECT month, treating_rhf, home_rhf, count(*) AS cases,
                   CAST(sum(exact_points) AS DOUBLE) AS points,
                   CAST(sum(amount) AS {MONEY}) AS amount,
                   count(*) FILTER (WHERE ownership = 'private') AS cases_private,
                   CAST(sum(amount) FILTER (WHERE ownership = 'private') AS {MONEY})
                     AS amount_private,
                   CAST(sum(amount) FILTER (WHERE ownership <> 'private') AS {MONEY})
                     AS amount_public,
                   bool_or(rate_assumed) AS rate_assumed
            FROM gp_cases WHERE {guests}
            GROUP BY ALL ORDER BY month, treating_rhf, home_rhf"""
    ).to_arrow_table()
    apart = con.sql(
        f"""SELECT month, treating_rhf,
                   CASE WHEN paid_privately THEN 'paid_privately' ELSE apart END AS category,
                   count(*) AS cases,
                   count(*) FILTER (WHERE ownership = 'private') AS cases_private,
                   CAST(sum(exact_points) AS DOUBLE) AS points
            FROM gp_cases WHERE (apart IS NOT NULL AND NOT paid_privately)
                                OR (paid_privately AND {counted})
            GROUP BY ALL ORDER BY ALL"""
    ).to_arrow_table()
    return {
        "gjestepasient_matrix": matrix,
        "gjestepasient_detail": detail,
        "gjestepasient_apart": apart,
    }
