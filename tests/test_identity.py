"""Fødselsnummer: the vectorised check agrees with python-stdnum, number by number."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.no import fodselsnummer

from npr_pipeline import identity
from tests.soak import examples


@pytest.mark.soak
@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.text(alphabet="0123456789", min_size=11, max_size=11), min_size=1, max_size=50))
def test_vectorised_check_matches_stdnum_on_any_digits(numbers: list[str]) -> None:
    mask = identity.valid_mask(pd.Series(numbers))
    assert mask.tolist() == [identity.is_valid(n) for n in numbers]


@pytest.mark.soak
@settings(max_examples=examples(200), deadline=None)
@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2025, 12, 31)), st.integers(0, 999))
def test_valid_real_numbers_agree_with_stdnum(born: date, individual: int) -> None:
    first_nine = f"{born:%d%m%y}{individual:03d}"
    d1 = fodselsnummer.calc_check_digit1(first_nine)
    number = first_nine + d1 + fodselsnummer.calc_check_digit2(first_nine + d1)
    number = number[:11]
    expected = fodselsnummer.is_valid(number)
    assert identity.valid_mask(pd.Series([number])).tolist() == [expected]


_LEXICAL = st.one_of(
    st.none(),
    st.text(alphabet="0123456789", min_size=11, max_size=11),
    st.text(alphabet="0123456789 -٣x", min_size=9, max_size=12),
)


@st.composite
def _synthetic_or_near(draw: st.DrawFn) -> str:
    """A number with the synthetic month (81-92, some days past the month's end), its check
    digits as stdnum computes them, sometimes one digit off."""
    first_nine = (
        f"{draw(st.integers(1, 31)):02d}{draw(st.integers(81, 92)):02d}"
        f"{draw(st.integers(0, 99)):02d}{draw(st.integers(0, 999)):03d}"
    )
    d1 = fodselsnummer.calc_check_digit1(first_nine)
    number = (first_nine + d1 + fodselsnummer.calc_check_digit2(first_nine + d1))[:11]
    if len(number) < 11 or draw(st.booleans()):
        at = draw(st.integers(0, 10))
        number = number.ljust(11, "0")
        number = number[:at] + str((int(number[at]) + 1) % 10) + number[at + 1 :]
    return number


@pytest.mark.soak
@settings(max_examples=examples(200), deadline=None)
@given(st.lists(st.one_of(_LEXICAL, _synthetic_or_near()), min_size=1, max_size=50))
def test_vectorised_check_matches_is_valid_with_and_without_synthetic(
    values: list[str | None],
) -> None:
    """Over the lexical space (well-shaped or not, missing, synthetic or near it), the column
    check says what :func:`identity.is_valid` (stdnum, and its check digits for synthetic
    numbers) says of each value, whether synthetic numbers are accepted or not."""
    series = pd.Series(values, dtype=object)
    for allow in (False, True):
        expected = [
            isinstance(v, str) and len(v) == 11 and v.isascii() and v.isdigit()
            and identity.is_valid(v, allow_synthetic=allow)
            for v in values
        ]  # fmt: skip
        assert identity.valid_mask(series, allow_synthetic=allow).tolist() == expected


def test_synthetic_numbers_only_where_allowed() -> None:
    synthetic = identity.synthetic_fnr(date(1980, 5, 17), 3)
    assert synthetic and identity.is_synthetic(synthetic)
    assert identity.valid_mask(pd.Series([synthetic]), allow_synthetic=True).tolist() == [True]
    assert identity.valid_mask(pd.Series([synthetic])).tolist() == [False]
    assert identity.is_valid(synthetic, allow_synthetic=True)
    assert not identity.is_valid(synthetic)


def test_malformed_values_are_invalid() -> None:
    values = pd.Series(["123", None, "abcdefghijk", "0101001235"])
    assert not identity.valid_mask(values, allow_synthetic=True).any()
