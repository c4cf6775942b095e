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
