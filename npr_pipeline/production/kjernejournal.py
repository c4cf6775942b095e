"""Kjernejournal: each person's contacts with specialist care (time and place only).

RULES.md: one row per person, place and day: the person's fødselsnummer (from the identity
vault), institution and unit, first and last date, care level and the number of contacts
collapsed into the row; the institution's ownership keeps public and private providers apart.
Left out: indirect contacts (kontaktType 5), units and fagområder on the exclusion list, and
persons without a valid identity number (their records are already excluded by the quality
rules), counted in the manifest apart: ``persons_invalid_number`` (the number fails its check
digits, or is born after the patient's first contact), ``persons_missing_from_ide`` (no
identity in the ide) and their union ``persons_without_valid_identity``. Who pays does not
decide anything here: privately financed contacts are delivered like the rest (RULES.md). The
rows carry the unit's ownership but not the payer (choice: the summary care record tells
clinicians where and when, a row collapses contacts that may have different payers, and the
payer is not theirs to see); the counts split the delivered contacts by ownership x financing,
so both are visible. Full refresh of the year to date, each run. The only delivery that holds
fødselsnummer: written apart, under HOME/restricted.

The period's snapshot holds no fødselsnummer (``idents`` there says which patient has an
identity, not the number): ``join_vault`` reads the numbers from the identity vault into the
session, in memory, and this step is the only one that asks for them.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from npr_pipeline.duck import has_table
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.daily_inputs import DailyInput, register_daily_rows
from npr_pipeline.production.inputs import InputFileError, readable
from npr_pipeline.production.isf import PRIVATE_PAYERS
from npr_pipeline.store.lake import part_files, rows_source

# A table, not a view: the rows and the ownership x financing split both read it, and a view
# would read the vault's files (~2,000 ide submissions nationally) behind ``identities`` twice.
DELIVERED = """
CREATE OR REPLACE TEMP TABLE kj_contacts AS
SELECT i.fid, e.*
FROM episodes e
JOIN identities i ON i.unit = e.unit AND i.pid = e."pasientNr"
WHERE e."kontaktType" <> '5'
  AND e.fagomrade NOT IN (SELECT value FROM ref_kj_exclusions WHERE kind = 'fagomrade')
  AND e."reshID" NOT IN (SELECT value FROM ref_kj_exclusions WHERE kind = 'reshID')
  AND e.unit NOT IN (SELECT value FROM ref_kj_exclusions WHERE kind = 'reshID')
"""

CONTACTS = """
SELECT e.fid AS fodselsnummer, e.unit AS institution, u.name AS institution_name,
       u.ownership,
       e."reshID" AS department, CAST(e."innDatoTid" AS DATE) AS contact_day,
       min(CAST(e."innDatoTid" AS DATE)) AS first_date,
       max(CAST(e."utDatoTid" AS DATE)) AS last_date,
       min(e.omsorgsniva) AS care_level,
       count(*) AS contacts
FROM kj_contacts e
LEFT JOIN ref_units u ON u."reshID" = e.unit
GROUP BY ALL
ORDER BY fodselsnummer, contact_day, institution, department
"""


def _split() -> str:
    """The delivered contacts by the unit's ownership x the record's financing: the rows carry
    ownership, the payer stays out of them (see the module docstring), the counts show both."""
    paid = f"coalesce(e.debitor IN {PRIVATE_PAYERS}, false)"
    cells = [
        f"count(*) FILTER (WHERE u.ownership = '{owner}' AND {test}) "
        f"AS contacts_{owner}_units_{financing}_financing"
        for owner in ("public", "private")
        for financing, test in (("public", f"NOT {paid}"), ("private", paid))
    ]
    return (
        f'SELECT {", ".join(cells)} FROM kj_contacts e LEFT JOIN ref_units u ON u."reshID" = e.unit'
    )


# Persons (a unit's patient numbers) without a valid identity number: the number fails its
# check digits or is born after the patient's first contact (the quality rules exclude them),
# or the patient is missing from the ide (excluded by the quality rule when the unit's ide
# came, or reaching production without an identity when it did not).
WITHOUT_IDENTITY = """
CREATE OR REPLACE TEMP TABLE invalid_number AS
SELECT DISTINCT unit, "pasientNr" FROM excluded
WHERE check_id IN ('fodselsnummer_valid', 'contact_before_birth');
CREATE OR REPLACE TEMP TABLE missing_from_ide AS
SELECT DISTINCT unit, "pasientNr" FROM excluded WHERE check_id = 'patient_has_ident'
UNION
SELECT DISTINCT unit, "pasientNr" FROM patients p
WHERE NOT EXISTS (SELECT 1 FROM idents i WHERE i.unit = p.unit AND i.pid = p."pasientNr");
"""


def join_vault(
    con: duckdb.DuckDBPyConnection, home: Home, period: Period, submissions: pd.DataFrame
) -> None:
    """Temporary view ``identities`` (unit, pid, fid): the session's ``idents`` with their numbers.

    The numbers come from the vault files of the ide submissions among ``submissions`` (the
    session's lineage: ``unit``, ``submission_id``, ``message_type``) and, for a snapshot with
    daily units, from their identities in the vault's event tables as known at the snapshot's
    batch; the session's ``idents`` decides which identities count (exclusions applied). A view
    in the session: nothing is written anywhere.
    """
    ides = submissions[submissions["message_type"] == "NPR_IDE"]
    files = part_files(home, "idents", ides["submission_id"])
    for row in ides.itertuples(index=False):  # fail closed
        what = f"vault file of submission {row.submission_id} ({row.unit})"
        if row.submission_id not in files:
            raise InputFileError(f"{what} is missing (the ledger says it exists)")
        readable(files[row.submission_id], what)
    chosen = {sid: files[sid] for sid in ides["submission_id"]}
    vault = (
        rows_source(chosen)
        if chosen
        else "(SELECT NULL::VARCHAR AS submission_id, NULL::VARCHAR AS pid, "
        "NULL::VARCHAR AS fid WHERE FALSE)"
    )
    numbers = f"SELECT submission_id, pid, fid FROM {vault}"
    daily = (
        con.execute("SELECT unit, batch FROM daily_input").fetchall()
        if has_table(con, "daily_input")
        else []
    )
    if daily:
        units, batch = [u for u, _ in daily], daily[0][1]
        # the identities alone: the snapshot holds the rest of the state, without the numbers
        daily = DailyInput(tuple(units), batch)
        rows = register_daily_rows(con, home, period.year, daily, tables=("idents",))
        numbers += f" UNION ALL SELECT submission_id, pid, fid FROM ({rows['idents']})"
    con.execute(
        "CREATE OR REPLACE TEMP VIEW identities AS SELECT i.unit, i.pid, v.fid FROM idents i "
        f"JOIN ({numbers}) v USING (submission_id, pid)"
    )


def _as_before(rows: pa.Table) -> pa.Table:
    """The rows with the file types the pandas route wrote (large strings, dates as
    microsecond timestamps), so a version read from Arrow keeps the restricted file's schema."""
    types = {
        pa.string(): pa.large_string(),
        pa.date32(): pa.timestamp("us"),
    }
    schema = pa.schema(
        [pa.field(f.name, types.get(f.type, f.type), f.nullable) for f in rows.schema]
    )
    return rows.cast(schema)


def compute(con: duckdb.DuckDBPyConnection, period: Period) -> dict[str, pa.Table | pd.DataFrame]:
    """``kjernejournal`` rows (Arrow: ~a million national rows skip pandas' object conversion
    on their way to Parquet) and ``kjernejournal_counts`` (what was left out, and why).

    Needs ``identities`` in the session (``join_vault``).
    """
    con.execute(DELIVERED)
    rows = _as_before(con.sql(CONTACTS).to_arrow_table())
    split = con.execute(_split()).df()
    con.execute(WITHOUT_IDENTITY)
    counts = con.execute(
        """SELECT
             (SELECT count(*) FROM raw_episodes) AS episodes_received,
             (SELECT count(*) FROM episodes) AS episodes_after_quality,
             (SELECT count(*) FROM episodes WHERE "kontaktType" = '5') AS indirect_left_out,
             (SELECT count(*) FROM episodes e WHERE e.fagomrade IN
                 (SELECT value FROM ref_kj_exclusions WHERE kind = 'fagomrade')
                 OR e."reshID" IN (SELECT value FROM ref_kj_exclusions WHERE kind = 'reshID')
                 OR e.unit IN (SELECT value FROM ref_kj_exclusions WHERE kind = 'reshID'))
               AS exclusion_list_left_out,
             (SELECT count(*) FROM episodes e WHERE NOT EXISTS
                 (SELECT 1 FROM idents i WHERE i.unit = e.unit AND i.pid = e."pasientNr"))
               AS without_identity,
             (SELECT count(*) FROM invalid_number) AS persons_invalid_number,
             (SELECT count(*) FROM missing_from_ide) AS persons_missing_from_ide,
             (SELECT count(*) FROM (SELECT * FROM invalid_number UNION SELECT * FROM
                 missing_from_ide)) AS persons_without_valid_identity"""
    ).df()
    counts.insert(0, "period", str(period))
    counts["rows"] = rows.num_rows
    counts["persons"] = pc.count_distinct(rows["fodselsnummer"]).as_py()
    for column in split.columns:
        counts[column] = int(split[column].iloc[0])
    return {"kjernejournal": rows, "kjernejournal_counts": counts}
