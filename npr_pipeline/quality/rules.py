"""Rules SQL cannot say well, as vectorised Python over one column."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from npr_pipeline import identity


def invalid_fodselsnummer(values: pd.Series, allow_synthetic: bool) -> pd.Series:
    """True where the number is not a valid fødselsnummer (synthetic numbers only if allowed)."""
    return pd.Series(~identity.valid_mask(values, allow_synthetic), index=values.index)


PYTHON_RULES: dict[str, Callable[[pd.Series, bool], pd.Series]] = {
    "invalid_fodselsnummer": invalid_fodselsnummer,
}
