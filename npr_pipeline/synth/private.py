"""Synthetic privately funded providers: ``npr synth --private-units N`` (issue 13).

TB2026-12 brings the private sector into the register: 20,000-65,000 units instead of about
2,000, most of them tiny. These rows stand for them: ownership and financing private, no RHF
agreement (``rhf`` empty: RULES.md "Who pays", a privately funded provider has no treating
region for the guest-patient settlement; ``isf_agreement`` false), a location, a specialty and
a size that makes most of them send a few records a month and some none at all. Their ids are
made up in ranges the bundled registry does not use (reshID and herID 9 digits from 7/8,
orgnr with a valid mod-11 check digit), so they never collide with a reference unit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from npr_pipeline import reference

UNIT_TYPE = "private_provider"
SPECIALTIES = (("050", "somatic"), ("300", "somatic"), ("110", "somatic"), ("320", "mental_health"))
IDLE_SHARE = 0.15  # providers with nothing to report in the year
_ORGNR_WEIGHTS = (3, 2, 7, 6, 5, 4, 3, 2)


def orgnr_for(k: int) -> str:
    """A valid organisation number unique to ``k`` (< 1,000,000): the first base whose check
    digit exists (a remainder of 10 has none)."""
    for block in range(70, 100):
        base = f"{block * 1_000_000 + k:08d}"
        remainder = sum(int(d) * w for d, w in zip(base, _ORGNR_WEIGHTS, strict=True)) % 11
        check = (11 - remainder) % 11
        if check != 10:
            return base + str(check)
    raise ValueError(f"no organisation number for provider {k}")  # pragma: no cover


def private_units(n: int, seed: int) -> pd.DataFrame:
    """``n`` private providers in the registry's columns, the same for the same seed."""
    rng = np.random.default_rng([seed, 7_000])
    munis = reference.municipalities()
    munis = munis[munis["rhf_code"].fillna("") != ""]
    rows = []
    for k in range(1, n + 1):
        fagomrade, sector = SPECIALTIES[int(rng.integers(len(SPECIALTIES)))]
        komnr = str(munis["komnr"].iloc[int(rng.integers(len(munis)))])
        idle = rng.random() < IDLE_SHARE
        weight = 0.0 if idle else round(float(np.exp(rng.normal(-1.5, 1.0))), 2) or 0.01
        rows.append(
            {
                "reshID": f"7{k:08d}",
                "orgnr": orgnr_for(k),
                "herID": f"8{k:08d}",
                "name": f"Privatklinikk {k} AS",
                "unit_type": UNIT_TYPE,
                "parent_trust": "",
                "rhf": "",
                "komnr": komnr,
                "ownership": "private",
                "financing": "private",
                "sector": sector,
                "fagomrade": fagomrade,
                "isf_agreement": False,
                "message_types": "NPR_ORD;NPR_IDE",
                "size_weight": weight,
                "valid_from": pd.Timestamp("2020-01-01"),
                "valid_to": pd.NaT,
            }
        )
    return pd.DataFrame(rows)
