"""Fødselsnummer: validation with python-stdnum, and the synthetic test-number convention.

Synthetic numbers add 80 to the month (Skatteetaten's synthetic national identity numbers), so
they can never be a real person's. python-stdnum rejects them as dates, so they are checked here
with stdnum's own check-digit functions; whether they are acceptable is a configuration choice:
in production they mark test data.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from stdnum.exceptions import ValidationError
from stdnum.no import fodselsnummer

SYNTHETIC_MONTH_OFFSET = 80


def is_synthetic(fnr: str) -> bool:
    """True when the month digits carry the synthetic offset (81-92)."""
    return len(fnr) == 11 and fnr.isdigit() and int(fnr[2:4]) > SYNTHETIC_MONTH_OFFSET


def _check_digits(first_nine: str) -> str:
    """The two mod-11 check digits, as stdnum computes them ("10" marks an impossible number)."""
    d1 = fodselsnummer.calc_check_digit1(first_nine)
    d2 = fodselsnummer.calc_check_digit2(first_nine + d1)
    return d1 + d2


def is_valid(fnr: str, allow_synthetic: bool = False) -> bool:
    """Whether ``fnr`` is a valid fødselsnummer (synthetic ones only if allowed): stdnum's
    check; a synthetic number's check digits by stdnum's functions and its birth date by
    stdnum's rules once the offset is taken off the month (as the column check does)."""
    if not is_synthetic(fnr):
        return fodselsnummer.is_valid(fnr)
    if not allow_synthetic:
        return False
    real_month = f"{int(fnr[2:4]) - SYNTHETIC_MONTH_OFFSET:02d}"
    try:  # the date by stdnum's rules (D-numbers, centuries, not born yet), the month restored
        born = fodselsnummer.get_birth_date(fnr[:2] + real_month + fnr[4:])
    except ValidationError:
        return False
    return _check_digits(fnr[:9]) == fnr[9:] and born <= date.today()


def _birth_date(fnr: str, month: int) -> date | None:
    """Birth date by the individual-number century rules (as stdnum, for synthetic months)."""
    day, year, individual = int(fnr[0:2]), int(fnr[4:6]), int(fnr[6:9])
    if individual < 500:
        year += 1900
    elif individual < 1000 and year < 40:
        year += 2000
    elif individual >= 900:
        year += 1900
    else:
        return None
    return date(year, month, day)


def synthetic_fnr(birth: date, individual: int) -> str | None:
    """A synthetic fødselsnummer for a birth date and individual number, or None.

    None when the individual number gives check digit 10 (no valid number exists for it) or
    does not fit the birth century (000-499 for 1900-1999, 500-999 from 2000): the caller tries
    the next individual number.
    """
    first_nine = (
        f"{birth.day:02d}{birth.month + SYNTHETIC_MONTH_OFFSET:02d}{birth.year % 100:02d}"
        f"{individual:03d}"
    )
    try:
        digits = _check_digits(first_nine)
    except ValueError:
        return None
    fnr = first_nine + digits
    if len(digits) != 2 or _birth_date(fnr, birth.month) != birth:
        return None
    return fnr


def birth_date(fnr: str) -> date | None:
    """Birth date of a real or synthetic number, None if it has none (FH-numbers, errors)."""
    month = int(fnr[2:4])
    if month > SYNTHETIC_MONTH_OFFSET:
        month -= SYNTHETIC_MONTH_OFFSET
    elif month > 40:
        month -= 40
    try:
        return _birth_date(fnr, month)
    except ValueError:
        return None


_W1 = np.array([3, 7, 6, 1, 8, 9, 4, 5, 2])
_W2 = np.array([5, 4, 3, 2, 7, 6, 5, 4, 3, 2])


def valid_mask(values: pd.Series, allow_synthetic: bool = False) -> np.ndarray:
    """:func:`is_valid` for a whole column at once (same rules, checked against stdnum in tests).

    A national ide file holds a million numbers; calling stdnum for each costs minutes, the same
    mod-11 and date arithmetic on a digit matrix costs milliseconds.
    """
    shaped, digits = _digit_matrix(values)
    result = np.zeros(len(values), dtype=bool)
    if not shaped.any():
        return result
    k1 = (11 - digits[:, :9] @ _W1 % 11) % 11
    k2 = (11 - digits[:, :10] @ _W2 % 11) % 11
    checksum = (k1 == digits[:, 9]) & (k2 == digits[:, 10])
    born, synthetic = _born(digits)
    dated = born <= np.datetime64(date.today())  # NaT compares False
    fh_number = digits[:, 0] >= 8
    result[shaped] = checksum & dated & ~fh_number & (allow_synthetic | ~synthetic)
    return result


def birth_dates(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The birth date each number carries (real, D- or synthetic number), null where it carries
    none: not eleven digits, an FH-number, no century for its individual number, no such day.
    The check digits are not looked at (``fodselsnummer_valid`` does that): a rule comparing a
    birth date with the patient's records reads it through this, as DuckDB's
    ``fnr_birth_date`` (:mod:`npr_pipeline.quality.reference_tables`)."""
    shaped, digits = _digit_matrix(values)
    born = np.full(len(shaped), np.datetime64("NaT"), dtype="datetime64[D]")
    dates, _ = _born(digits)
    born[shaped] = np.where(digits[:, 0] < 8, dates, np.datetime64("NaT"))
    return pa.array(born, pa.date32())


def _digit_matrix(values: pd.Series | pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Which values are eleven digits, and those values' digits as a matrix (a row each).

    The matrix is the Arrow buffer of the well-shaped numbers cast to 11-byte binary: joining
    them as Python strings iterated the column element by element (~1 µs a number)."""
    if isinstance(values, pd.Series):
        values = pa.array(values.astype("string"))
    text = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    shaped = pc.fill_null(pc.match_substring_regex(text, "^[0-9]{11}$"), False)
    fixed = text.filter(shaped).cast(pa.binary(11))
    if len(fixed) == 0:
        return shaped.to_numpy(zero_copy_only=False), np.zeros((0, 11), dtype=np.int64)
    data = np.frombuffer(fixed.buffers()[1], np.uint8, 11 * len(fixed), 11 * fixed.offset)
    return shaped.to_numpy(zero_copy_only=False), (data.reshape(-1, 11) - 48).astype(np.int64)


def _born(digits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's birth date (``datetime64[D]``, NaT where there is no such day or no century
    for its individual number) and whether it is a synthetic number: D-number days less 40,
    synthetic months less 80 and H-number months less 40, the century from the individual
    number. Day arithmetic in numpy: ~0.2 µs a number, where pandas' date assembly cost ~0.5 and
    the rule ``contact_before_birth`` reads every identity of a national month through it."""
    day = digits[:, 0] * 10 + digits[:, 1]
    month = digits[:, 2] * 10 + digits[:, 3]
    yy = digits[:, 4] * 10 + digits[:, 5]
    individual = digits[:, 6] * 100 + digits[:, 7] * 10 + digits[:, 8]
    synthetic = month > SYNTHETIC_MONTH_OFFSET
    month = np.where(
        synthetic, month - SYNTHETIC_MONTH_OFFSET, np.where(month > 40, month - 40, month)
    )
    day = np.where(day > 40, day - 40, day)
    century = np.select(
        [
            individual < 500,
            (individual < 750) & (yy >= 54),
            (individual < 1000) & (yy < 40),
            (individual >= 900) & (yy >= 40),
        ],
        [1900, 1800, 2000, 1900],
        default=0,
    )
    first_of_month = (century + yy - 1970).astype("datetime64[Y]").astype("datetime64[M]") + (
        month - 1
    )
    born = first_of_month.astype("datetime64[D]") + (day - 1)
    real = (
        (century > 0)
        & (month >= 1)
        & (month <= 12)
        & (day >= 1)
        & (born.astype("datetime64[M]") == first_of_month)  # no 31 February
    )
    return np.where(real, born, np.datetime64("NaT")), synthetic
