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
    mod-11 and date arithmetic on a digit matrix costs milliseconds. The digit matrix is the
    Arrow buffer of the well-shaped numbers cast to 11-byte binary: joining them as Python
    strings iterated the column element by element (~1 µs a number, most of this function).
    """
    text = pa.array(values.astype("string"))
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    shaped = pc.fill_null(pc.match_substring_regex(text, "^[0-9]{11}$"), False)
    mask = shaped.to_numpy(zero_copy_only=False)
    result = np.zeros(len(values), dtype=bool)
    if not mask.any():
        return result
    fixed = text.filter(shaped).cast(pa.binary(11))
    data = np.frombuffer(fixed.buffers()[1], np.uint8, 11 * len(fixed), 11 * fixed.offset)
    digits = (data.reshape(-1, 11) - 48).astype(np.int64)
    k1 = (11 - digits[:, :9] @ _W1 % 11) % 11
    k2 = (11 - digits[:, :10] @ _W2 % 11) % 11
    checksum = (k1 == digits[:, 9]) & (k2 == digits[:, 10])
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
    born = pd.to_datetime(
        pd.DataFrame({"year": century + yy, "month": month, "day": day}), errors="coerce"
    )
    dated = born.notna().to_numpy() & (century > 0) & (born <= pd.Timestamp.today()).to_numpy()
    fh_number = digits[:, 0] >= 8
    ok = checksum & dated & ~fh_number & (allow_synthetic | ~synthetic)
    result[mask] = ok
    return result
