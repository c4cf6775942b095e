"""Deployment settings under HOME (``settings.json``), validated by pydantic.

Kept in HOME, not in the repository, because they differ between production, the validation
service and a demo: most of all whether synthetic fødselsnummer are acceptable (in production
they mark test data).
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from npr_pipeline.atomic import write_text
from npr_pipeline.home import Home


class Settings(BaseModel):
    """What may differ between deployments."""

    allow_synthetic_fnr: bool = False
    max_file_bytes: int = Field(default=1 << 30, gt=0)
    max_excluded_share: float = Field(default=0.05, ge=0.0, le=1.0)


def load_settings(home: Home) -> Settings:
    """``HOME/settings.json`` if present, else the production defaults."""
    path = home.root / "settings.json"
    if not path.exists():
        return Settings()
    return Settings.model_validate(json.loads(path.read_text(encoding="utf-8")))


def save_settings(home: Home, settings: Settings) -> None:
    """Write ``HOME/settings.json`` atomically."""
    write_text(home.root / "settings.json", settings.model_dump_json(indent=2))
