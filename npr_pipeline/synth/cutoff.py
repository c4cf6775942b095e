"""What a unit's EPJ extract shows at the end of a month: the cumulative view of its year.

An episode is reported once it has ended (an inpatient stay that crosses a month end first
appears in the next month's file). A referral period is reported from the day it is received;
what happens after the cut-off (assessment, care start, end, postponements) is not yet known.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from npr_pipeline.synth.model import Episode, Patient, Referral


def referral_as_of(referral: Referral, cutoff: date) -> Referral | None:
    """The referral as it stood on ``cutoff``, or None if it was not yet received."""
    if referral.received > cutoff:
        return None
    ended_by_then = referral.ended is not None and referral.ended <= cutoff
    return replace(
        referral,
        assessed=referral.assessed if referral.assessed and referral.assessed <= cutoff else None,
        care_start=referral.care_start if ended_by_then else None,
        ended=referral.ended if ended_by_then else None,
        end_code=referral.end_code if ended_by_then else None,
        postponements=[
            replace(p, end=p.end if p.end and p.end <= cutoff else None)
            for p in referral.postponements
            if p.start <= cutoff
        ],
    )


def episodes_as_of(episodes: list[Episode], cutoff: date) -> list[Episode]:
    """Episodes that had ended by ``cutoff``."""
    return [e for e in episodes if e.end.date() <= cutoff]


def patient_as_of(patient: Patient, cutoff: date) -> tuple[list[Referral], list[Episode]] | None:
    """The patient's reportable referrals and episodes, or None if there is nothing yet."""
    referrals = [r for r in (referral_as_of(x, cutoff) for x in patient.referrals) if r]
    episodes = episodes_as_of(patient.episodes, cutoff)
    if not referrals and not episodes:
        return None
    return referrals, episodes
