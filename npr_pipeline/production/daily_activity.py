"""Preliminary daily activity: the near-real-time extract of the daily route (issue 13).

Contacts per day, region (the unit's RHF), service area (``fagomrade``), ownership (the unit's,
from the registry) and financing (the payer on each contact: the patient or an insurer is
private, everything else public; as ISF reads ``debitor``), counted from the consolidated state
as known at the newest committed intake batch. Refreshed after every intake batch, so it is
minutes old, not a month; it is preliminary (later events can still change or cancel any
contact, and units on the monthly route only appear when their monthly file arrives) and kept
apart from the official, versioned deliveries: one warehouse table, ``daily_activity``,
replaced whole on every refresh, never in ``delivery_versions``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from npr_pipeline import duck
from npr_pipeline.home import Home
from npr_pipeline.production.isf import PRIVATE_PAYERS
from npr_pipeline.registry import current_registry
from npr_pipeline.store.batches import committed_batch, committed_batches
from npr_pipeline.store.consolidated import register_daily_state
from npr_pipeline.store.events import events_dataset
from npr_pipeline.warehouse import writer

TABLE = "daily_activity"
CONTACTS = "daily_contacts"  # the event table of the contact messages
COLUMNS = ["day", "rhf", "fagomrade", "ownership", "financing", "contacts", "preliminary",
           "as_of_batch", "refreshed_at"]  # fmt: skip


@dataclass(frozen=True)
class Refreshed:
    """What a refresh wrote: rows, contacts, the batch it read, and when."""

    rows: int
    contacts: int
    as_of_batch: int
    refreshed_at: pd.Timestamp


def activity(home: Home, batch: int) -> pd.DataFrame:
    """The preliminary counts of every year the daily route has events for, as known at
    ``batch``."""
    con = duck.connect()
    try:
        con.register("_units", current_registry(home)[["reshID", "rhf", "ownership"]])
        con.register("_events", events_dataset(home, CONTACTS))
        con.register("_batches", committed_batches(home, batch))
        years = con.execute(
            "SELECT DISTINCT year FROM _events WHERE batch IN (SELECT batch FROM _batches) "
            "ORDER BY 1"
        ).fetchall()
        parts = []
        for (year,) in years:
            register_daily_state(con, home, int(year), batch, prefix="activity_")
            parts.append(
                con.execute(
                    f"""SELECT CAST("innDatoTid" AS DATE) AS day, coalesce(u.rhf, '') AS rhf,
                        e.fagomrade, coalesce(u.ownership, '') AS ownership,
                        CASE WHEN e.debitor IN {PRIVATE_PAYERS} THEN 'private' ELSE 'public'
                            END AS financing,
                        count(*) AS contacts
                    FROM activity_episodes e LEFT JOIN _units u ON u."reshID" = e.unit
                    GROUP BY ALL ORDER BY ALL"""
                ).df()
            )
    finally:
        con.close()
    frame = pd.concat(parts, ignore_index=True) if parts else _empty()
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    return frame.assign(preliminary=True, as_of_batch=batch, refreshed_at=now)[COLUMNS]


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "day": pd.Series(dtype="datetime64[s]"),
            **{c: pd.Series(dtype="string") for c in COLUMNS[1:5]},
            "contacts": pd.Series(dtype="int64"),
        }
    )


def refresh(home: Home) -> Refreshed:
    """Replace the warehouse's ``daily_activity`` with the counts as known now."""
    batch = committed_batch(home)
    frame = activity(home, batch)
    with writer(home) as con:
        con.register("_activity", frame)  # pandas holds the day as a timestamp: a DATE again
        con.execute(
            f"CREATE OR REPLACE TABLE {TABLE} AS "
            "SELECT * REPLACE (CAST(day AS DATE) AS day) FROM _activity"
        )
    at = pd.Timestamp.now(tz="UTC").floor("s")
    return Refreshed(len(frame), int(frame["contacts"].sum()), batch, at)
