"""Deployment settings under HOME: the HOME's environment and ``settings.json``.

Every HOME is a ``test`` or a ``production`` HOME (CONTRACT.md, "HOME environments"), recorded
once in ``HOME/environment.json`` and never changed: ``npr demo`` and the tests record ``test``
when they create a HOME; otherwise the HOME's first registry import decides (a synthetic
registry, one written by ``npr synth`` from the bundled reference registry: ``test``; anything
else: ``production``). Until then the HOME counts as production, the strict side. A production
HOME refuses synthetic registries and synthetic fødselsnummer (month + 80), whatever
``settings.json`` says.

``settings.json`` holds what may otherwise differ between deployments (size limits, the
excluded-share threshold) and, in a test HOME only, whether synthetic numbers count as valid.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

from npr_pipeline.atomic import write_text
from npr_pipeline.home import Environment, Home

PRODUCTION: Environment = "production"
TEST: Environment = "test"


class HomeEnvironmentError(ValueError):
    """The HOME's environment forbids this (or would have to change, which it never does)."""


class Settings(BaseModel):
    """What may differ between deployments.

    ``environment`` is the HOME's recorded environment (``load_settings`` fills it in; it is
    not read from ``settings.json``). In a test HOME synthetic fødselsnummer are valid data
    unless ``allow_synthetic_fnr`` is false (to try the production behaviour); a production
    HOME always treats them as test data, and refuses a settings file that allows them.
    """

    environment: Literal["production", "test"] = PRODUCTION
    allow_synthetic_fnr: bool | None = None
    max_file_bytes: int = Field(default=1 << 30, gt=0)
    max_excluded_share: float = Field(default=0.05, ge=0.0, le=1.0)
    # E-mail of the answers to the technical contacts: off (no host) unless configured, so a
    # demo or a test HOME sends nothing by itself (docs/answers.md).
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, gt=0, lt=65536)
    smtp_sender: str = "npr-tilbakemelding@fhi.example"
    smtp_timeout: float = Field(default=30.0, gt=0)
    smtp_attempts: int = Field(default=3, ge=1)
    smtp_retry_seconds: float = Field(default=5.0, ge=0)

    @property
    def synthetic_fnr_accepted(self) -> bool:
        """Synthetic numbers are valid data in a test HOME, never in production."""
        if self.environment == PRODUCTION:
            return False
        return self.allow_synthetic_fnr is not False


def load_settings(home: Home) -> Settings:
    """``HOME/settings.json`` (defaults where absent), with the HOME's environment."""
    path = home.root / "settings.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    settings = Settings.model_validate({**data, "environment": environment(home)})
    if settings.environment == PRODUCTION and settings.allow_synthetic_fnr:
        raise HomeEnvironmentError(
            f"{path}: allow_synthetic_fnr is true, but {home.root} is a production HOME; "
            "synthetic fødselsnummer are accepted only in test HOMEs"
        )
    return settings


def save_settings(home: Home, settings: Settings) -> None:
    """Write ``HOME/settings.json`` atomically (the environment lives in its own record)."""
    write_text(
        home.root / "settings.json", settings.model_dump_json(indent=2, exclude={"environment"})
    )


def recorded_environment(home: Home) -> Environment | None:
    """The environment recorded for ``home``, or None before it has one."""
    if not home.environment_file.exists():
        return None
    return json.loads(home.environment_file.read_text(encoding="utf-8"))["environment"]


def record_environment(home: Home, chosen: Environment, why: str) -> Environment:
    """Record ``home``'s environment once; recording the same again changes nothing.

    Raises :class:`HomeEnvironmentError` if the HOME already records the other one: a
    production HOME never becomes a test HOME (or the reverse).
    """
    if chosen not in (TEST, PRODUCTION):
        raise ValueError(f"unknown HOME environment {chosen!r}")
    current = recorded_environment(home)
    if current == chosen:
        return chosen
    if current is not None:
        raise HomeEnvironmentError(
            f"{home.root} is a {current} HOME (see {home.environment_file}); it cannot become "
            f"a {chosen} HOME ({why}). Use another --home."
        )
    home.root.mkdir(parents=True, exist_ok=True)
    record = {
        "environment": chosen,
        "why": why,
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_text(home.environment_file, json.dumps(record, indent=2))
    return chosen


def environment(home: Home) -> Environment:
    """The HOME's environment: as recorded, else from its first imported registry.

    A HOME made before environments were recorded is classified (and recorded) by its first
    registry version, as a new HOME is at its first import; one without any registry counts
    as production and records nothing yet.
    """
    current = recorded_environment(home)
    if current is not None:
        return current
    first = home.registry / "registry-v0001.csv"
    if not first.exists():
        return PRODUCTION
    frame = pd.read_csv(first, dtype=str, comment="#", keep_default_na=False)
    chosen = TEST if synthetic_units(frame) else PRODUCTION
    return record_environment(home, chosen, f"first registry import {first.name}")


def synthetic_units(registry: pd.DataFrame) -> list[str]:
    """reshIDs of ``registry`` that are units of the bundled synthetic reference registry.

    Every reshID, orgnr and herID in ``data/reference/units.csv`` is made up, and ``npr synth``
    writes its registry from it, so a unit whose three ids all match one there is synthetic.
    """
    columns = [c for c in ("reshID", "orgnr", "herID") if c in registry.columns]
    if len(columns) < 3:
        return []
    keys = _bundled_keys()
    rows = registry[columns].astype(str).itertuples(index=False, name=None)
    return [row[0] for row in rows if row in keys]


@cache
def _bundled_keys() -> frozenset[tuple[str, str, str]]:
    """The bundled registry's (reshID, orgnr, herID) triples, built once per process: every
    registry import asks (~10 ms for its 2,000 units)."""
    from npr_pipeline import reference

    bundled = reference.units()[["reshID", "orgnr", "herID"]].astype(str)
    return frozenset(bundled.itertuples(index=False, name=None))
