"""ISF (innsatsstyrt finansiering): stays and contacts, DRG, points and refund.

RULES.md: inpatient episodes of one patient at one institution that follow each other (the
next starts on the day the previous ends or the day after) form one stay; every other episode
counts alone. One DRG per stay or contact: the official grouper's where the episode carries it
(first episode that has one), else the simplified table grouper with the main condition of the
stay's first episode that has one. Points = the DRG weight; refund = points x unit price x refund
share for the activity kind (outpatient contacts and day treatment, care level 2, 3 or 8, in
mental health and TSB at their own rate; everything else, stays included, somatic). Money is
exact: DECIMAL arithmetic, each line rounded half up to øre, every total the sum of its rounded
lines. Rates marked assumed make every row that uses them say so. A stay or contact whose payer
(debitor; a stay takes its first episode's) is the patient or a private insurer (30, 32, 60) is
left out of ISF and of the settlement, and counted. Episode ids are the unit's own, so an
activity is always identified by (unit, activity_id): two units may use one id.
"""

from __future__ import annotations

import duckdb

from npr_pipeline.duck import has_table
from npr_pipeline.periods import Period
from npr_pipeline.production.deliveries import Frame

PSYCH_SECTORS = "('641', '642', '651', '681')"
PSYCH_FAGOMRADER = "('310', '320', '360', '365', '370')"
PRIVATE_PAYERS = "('30', '32', '60')"  # debitor: the patient (30, 32) or an insurer (60) pays
MONEY = "DECIMAL(18, 2)"
LEVELS = ("unit", "trust", "rhf", "ownership")  # the summary's levels below ``all``
POINTS = "DECIMAL(18, 4)"

GRADED = "isf_graded"
"""The snapshot's stays and contacts with their DRG and points, not priced (``grade``'s
``isf_detail``, stored by ``snapshot.build_snapshot``): ISF and the guest-patient settlement
price them in their steps rather than each grouping ~1 M episodes again, and a rebuild after a
daily correction grades the daily units' episodes alone (stays never cross units)."""


def grade(con: duckdb.DuckDBPyConnection, units: str | None = None) -> None:
    """The session's stays and contacts with DRG and points (temporary ``isf_detail``), of the
    units in relation ``units`` (a ``unit`` column) or of every unit."""
    scope = f"e.unit IN (SELECT unit FROM {units})" if units else "TRUE"
    con.execute(_activities(scope))


def _activities(scope: str) -> str:
    return f"""
CREATE OR REPLACE TEMP TABLE isf_episodes AS
SELECT e.submission_id, e.unit, e."pasientNr", e."episodeID", e."reshID" AS department,
       e.fagomrade, CASE WHEN e.omsorgsniva = '8' THEN '3' ELSE e.omsorgsniva END AS level,
       e."innDatoTid", e."utDatoTid", e."komNrHjem", e.debitor, e.drg AS official_drg,
       d."kodeNr" AS main_code, dep.sektor,
       EXISTS (SELECT 1 FROM procedures p
               WHERE p.submission_id = e.submission_id AND p."episodeID" = e."episodeID")
         AS has_procedure
FROM episodes e
LEFT JOIN diagnoses d ON d.submission_id = e.submission_id AND d."episodeID" = e."episodeID"
     AND d."tilstNr" = 1
LEFT JOIN departments dep ON dep.submission_id = e.submission_id AND dep."reshID" = e."reshID"
WHERE {scope};

CREATE OR REPLACE TEMP TABLE isf_activities AS
WITH inpatient AS (
  SELECT *, max(CAST("utDatoTid" AS DATE)) OVER (
      PARTITION BY unit, "pasientNr" ORDER BY "innDatoTid", "episodeID"
      ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS previous_end
  FROM isf_episodes WHERE level = '1'
), numbered AS (
  SELECT *, sum(CASE WHEN previous_end IS NULL
                       OR CAST("innDatoTid" AS DATE) > previous_end + 1 THEN 1 ELSE 0 END)
            OVER (PARTITION BY unit, "pasientNr" ORDER BY "innDatoTid", "episodeID"
                  ROWS UNBOUNDED PRECEDING) AS stay_no
  FROM inpatient
), stays AS (
  SELECT unit, "pasientNr", 'stay' AS kind,
         arg_min("episodeID", "innDatoTid") AS activity_id,
         string_agg("episodeID", ' ' ORDER BY "innDatoTid") AS episodes,
         count(*) AS episode_count,
         min("innDatoTid") AS start_time, max("utDatoTid") AS end_time, '1' AS level,
         arg_min(fagomrade, "innDatoTid") AS fagomrade,
         arg_min(sektor, "innDatoTid") AS sektor,
         arg_min(department, "innDatoTid") AS department,
         arg_min("komNrHjem", "innDatoTid") AS "komNrHjem",
         arg_min(debitor, ("innDatoTid", "episodeID")) AS debitor,
         arg_min(main_code, "innDatoTid") FILTER (WHERE main_code IS NOT NULL) AS main_code,
         bool_or(has_procedure) AS has_procedure,
         arg_min(official_drg, "innDatoTid") FILTER (WHERE official_drg IS NOT NULL)
           AS official_drg
  FROM numbered GROUP BY unit, "pasientNr", stay_no
)
SELECT * FROM stays
UNION ALL BY NAME
SELECT unit, "pasientNr", 'contact' AS kind, "episodeID" AS activity_id, "episodeID" AS episodes,
       1 AS episode_count, "innDatoTid" AS start_time, "utDatoTid" AS end_time, level, fagomrade,
       sektor, department, "komNrHjem", debitor, main_code, has_procedure, official_drg
FROM isf_episodes WHERE level <> '1';

CREATE OR REPLACE TEMP TABLE isf_drg_rules AS
SELECT *, CASE WHEN icd10_chapter_or_prefix = '*' THEN 3
               WHEN contains(icd10_chapter_or_prefix, '-') THEN 2 ELSE 1 END AS specificity,
       split_part(icd10_chapter_or_prefix, '-', 1) AS low,
       split_part(icd10_chapter_or_prefix, '-', 2) AS high
FROM ref_drg;

CREATE OR REPLACE TEMP TABLE isf_detail AS
WITH grouped AS (
  SELECT a.unit, a.activity_id, r.drg, r.weight
  FROM isf_activities a JOIN isf_drg_rules r
    ON r.omsorgsniva = a.level
   AND r.procedure_flag = CASE WHEN a.has_procedure THEN 'Y' ELSE 'N' END
   AND (r.specificity = 3
        OR (r.specificity = 1 AND starts_with(coalesce(a.main_code, ''), r.icd10_chapter_or_prefix))
        OR (r.specificity = 2 AND left(coalesce(a.main_code, ''), 3) BETWEEN r.low AND r.high))
  QUALIFY row_number() OVER (PARTITION BY a.unit, a.activity_id ORDER BY r.specificity) = 1
), official AS (SELECT DISTINCT drg, weight FROM ref_drg)
SELECT a.*, strftime(a.end_time, '%Y-%m') AS month,
       coalesce(a.official_drg, g.drg) AS drg,
       CASE WHEN a.official_drg IS NOT NULL THEN 'official' ELSE 'simplified' END AS drg_source,
       coalesce(o.weight, CASE WHEN a.official_drg IS NULL THEN g.weight END) AS points,
       CASE WHEN a.level IN ('2', '3') AND (a.sektor IN {PSYCH_SECTORS}
                 OR a.fagomrade IN {PSYCH_FAGOMRADER})
            THEN 'psych_tsb_outpatient' ELSE 'somatic' END AS activity,
       coalesce(a.debitor IN {PRIVATE_PAYERS}, false) AS paid_privately
FROM isf_activities a
JOIN grouped g USING (unit, activity_id)
LEFT JOIN official o ON o.drg = a.official_drg;
"""


PRICED = f"""
CREATE OR REPLACE TEMP TABLE isf_priced AS
SELECT d.*, u.name AS unit_name, u.parent_trust AS trust, u.rhf, u.ownership,
       r.unit_price_nok, r.refund_share, r.settlement_share, r.assumed AS rate_assumed,
       CAST(round(d.points * r.unit_price_nok * r.refund_share, 2) AS {MONEY}) AS refund
FROM {{graded}} d
LEFT JOIN ref_units u ON u."reshID" = d.unit
LEFT JOIN ref_rates r ON r.activity = d.activity;
"""


def price(con: duckdb.DuckDBPyConnection) -> None:
    """The session's stays and contacts with DRG, points and refund (``isf_priced``): what ISF
    and the guest-patient settlement both start from, without ISF's own tables. Graded in the
    session unless it reads a snapshot, which holds them graded (``GRADED``)."""
    graded = GRADED
    if not has_table(con, GRADED):
        grade(con)
        graded = "isf_detail"
    con.execute(PRICED.format(graded=graded))


def compute(con: duckdb.DuckDBPyConnection, period: Period) -> dict[str, Frame]:
    """``isf_detail`` (one line per publicly funded stay or contact in the window) and
    ``isf_summary`` (with the stays and contacts left out because the patient or an insurer
    pays). Money stays DECIMAL(18, 2) (Arrow decimal128) all the way to the warehouse."""
    price(con)
    start, end = (d.isoformat() for d in period.window)
    window = f"CAST(end_time AS DATE) BETWEEN DATE '{start}' AND DATE '{end}'"
    detail = con.sql(
        f"""SELECT activity_id, kind, unit, unit_name, trust, rhf, ownership, "pasientNr",
                   episodes, episode_count, start_time, end_time, month, level, fagomrade,
                   main_code, has_procedure, drg, drg_source, CAST(points AS DOUBLE) AS points,
                   activity, unit_price_nok, refund_share, refund, rate_assumed
            FROM isf_priced WHERE {window} AND NOT paid_privately ORDER BY unit, activity_id"""
    ).to_arrow_table()
    to_date = f"CAST(end_time AS DATE) <= DATE '{end}'"
    parts = [
        _summary(to_date, "month", by_month=True),
        _summary(to_date, "'year_to_date'"),
        _summary(window, "'period'"),
    ]
    union = " UNION ALL ".join(f"SELECT *, {i} AS part FROM ({sql})" for i, sql in enumerate(parts))
    summary = con.sql(
        f"SELECT * EXCLUDE (part) FROM ({union}) ORDER BY part, level, key, month"
    ).to_arrow_table()
    return {"isf_detail": detail, "isf_summary": summary}


def _summary(where: str, month: str, by_month: bool = False) -> str:
    """Stays, contacts, points and refund per unit, health trust, RHF, ownership and in all.

    Totals are sums of the rounded detail lines (exact in DECIMAL). Stays and contacts paid by
    the patient or an insurer are not in them, only counted in ``left_out_paid_privately``:
    the ``ownership`` level says how many of those were at public and at private units.
    """
    extra = ", month" if by_month else ""
    sets = ", ".join(f"({key}{extra})" for key in LEVELS) + (", (month)" if by_month else ", ()")
    level = " ".join(f"WHEN grouping({key}) = 0 THEN '{key}'" for key in LEVELS)
    key = " ".join(f"WHEN grouping({key}) = 0 THEN {key}" for key in LEVELS)
    public = "FILTER (WHERE NOT paid_privately"
    return f"""SELECT CASE {level} ELSE 'all' END AS level,
                   CASE {key} ELSE 'all' END AS key,
                   {month} AS month,
                   count(*) {public} AND kind = 'stay') AS stays,
                   count(*) {public} AND kind = 'contact') AS contacts,
                   CAST(coalesce(sum(points) {public}), 0) AS DOUBLE) AS points,
                   CAST(coalesce(sum(refund) {public}), 0) AS {MONEY}) AS refund,
                   CAST(sum(refund) {public} AND ownership = 'private') AS {MONEY})
                     AS refund_private,
                   CAST(sum(refund) {public} AND ownership <> 'private') AS {MONEY})
                     AS refund_public,
                   bool_or(rate_assumed) {public}) AS rate_assumed,
                   count(*) FILTER (WHERE paid_privately) AS left_out_paid_privately
            FROM isf_priced WHERE {where}
            GROUP BY GROUPING SETS ({sets})"""
