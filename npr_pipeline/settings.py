"""Deployment settings under HOME (``settings.json``), validated by pydantic.

Kept in HOME, not in the repository, because they differ between production, the validation
service and a demo: most of all whether synthetic fødselsnummer are acceptable (in production
they mark test data).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from npr_pipeline.atomic import write_text
from npr_pipeline.home import Home


class Settings(BaseModel):
    """What may differ between deployments.

    ``environment`` is ``test`` until an installation says ``production``: a HOME made by
    ``npr`` for synthetic data (the demo, a developer, the contract check) accepts synthetic
    fødselsnummer; a production HOME rejects them as test data unless
    ``allow_synthetic_fnr`` says otherwise explicitly.
    """

    environment: Literal["production", "test"] = "test"
    allow_synthetic_fnr: bool | None = None
    max_file_bytes: int = Field(default=1 << 30, gt=0)
    max_excluded_share: float = Field(default=0.05, ge=0.0, le=1.0)

    @property
    def synthetic_fnr_accepted(self) -> bool:
        """Synthetic numbers are valid data in a test environment, test data in production."""
        if self.allow_synthetic_fnr is not None:
            return self.allow_synthetic_fnr
        return self.environment != "production"


def load_settings(home: Home) -> Settings:
    """``HOME/settings.json`` if present, else the production defaults."""
    path = home.root / "settings.json"
    if not path.exists():
        return Settings()
    return Settings.model_validate(json.loads(path.read_text(encoding="utf-8")))


def save_settings(home: Home, settings: Settings) -> None:
    """Write ``HOME/settings.json`` atomically."""
    write_text(home.root / "settings.json", settings.model_dump_json(indent=2))
