"""HOME: the one folder that holds all runtime state, laid out in one place.

Every command and asset finds its files through :class:`Home`, so the layout the contract
promises (archive, ledger, lake, warehouse, feedback, vault, extracts, DAGSTER_HOME) is written
down exactly once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

DEFAULT_HOME = Path(__file__).resolve().parents[1] / "data" / "home"

Environment = Literal["test", "production"]
"""What a HOME is for (CONTRACT.md, "HOME environments"): recorded once, never changed."""

# DuckDB allows one writing process per file: every asset that writes the warehouse is in the
# "warehouse" pool, limited to one step at a time across all runs of this instance.
DAGSTER_INSTANCE = """\
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


class Home(BaseModel):
    """Paths under one runtime root; creating them is idempotent."""

    root: Path

    @classmethod
    def resolve(cls, home: str | Path | None = None) -> Home:
        """``--home`` wins, then ``NPR_HOME``, then ``data/home`` in the checkout."""
        chosen = home or os.environ.get("NPR_HOME") or DEFAULT_HOME
        return cls(root=Path(chosen).expanduser().resolve())

    @property
    def archive(self) -> Path:
        """Raw bytes of every file ever received, content-addressed, never modified."""
        return self.root / "archive"

    @property
    def ledger(self) -> Path:
        """One JSON line per received file: the submission ledger's source of truth."""
        return self.root / "ledger"

    @property
    def lake(self) -> Path:
        """Parquet tables of parsed submissions."""
        return self.root / "lake"

    @property
    def warehouse(self) -> Path:
        """The DuckDB file with registry, ledger, quality results and deliveries."""
        return self.root / "warehouse.duckdb"

    @property
    def feedback(self) -> Path:
        """XPR_VAL / XPR_ERR reports per submission."""
        return self.root / "feedback"

    @property
    def vault(self) -> Path:
        """The identity vault: fødselsnummer <-> pasientNr per unit, kept apart."""
        return self.root / "vault"

    @property
    def restricted(self) -> Path:
        """Access-restricted deliveries (kjernejournal holds fødselsnummer)."""
        return self.root / "restricted"

    @property
    def extracts(self) -> Path:
        """Research extracts with their manifests."""
        return self.root / "extracts"

    @property
    def reports(self) -> Path:
        """The report page of each period's production runs (``reports/<period>/index.html``)."""
        return self.root / "reports"

    @property
    def registry(self) -> Path:
        """Imported versions of the unit registry."""
        return self.root / "registry"

    @property
    def environment_file(self) -> Path:
        """Whether this is a ``test`` or a ``production`` HOME, and why (``settings``)."""
        return self.root / "environment.json"

    @property
    def dagster_home(self) -> Path:
        """DAGSTER_HOME, so runs started by ``npr run`` show in ``dagster dev``."""
        return self.root / "dagster"

    @property
    def staging(self) -> Path:
        """Where intake stages a file's tables before they move to the lake or the vault."""
        return self.root / "staging"

    def ensure(self) -> Home:
        """Create what is missing; the folders that hold fødselsnummer are owner-only: the vault
        and the restricted deliveries, and the raw archive and intake's staging area, which
        hold the ide files as received and their tables on the way to the vault.

        Writes nothing to a HOME that is complete already, so it never fails on one that is
        read-only: the error comes from the first write a command really needs.
        """
        for path in (
            self.ledger,
            self.lake,
            self.feedback,
            self.extracts,
            self.registry,
            self.dagster_home,
        ):
            if not path.is_dir():
                path.mkdir(parents=True, exist_ok=True)
        for private in (self.vault, self.restricted, self.archive, self.staging):
            if not private.is_dir():
                private.mkdir(parents=True, exist_ok=True)
            if private.stat().st_mode & 0o777 != 0o700:
                private.chmod(0o700)
        instance = self.dagster_home / "dagster.yaml"
        if not instance.exists():
            instance.write_text(DAGSTER_INSTANCE, encoding="utf-8")
        return self
