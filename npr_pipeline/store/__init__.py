"""The register's state, at the bottom of the core: intake writes it; quality, production and
research read it. Nothing here imports intake, quality, production, research or Dagster.

- :mod:`npr_pipeline.store.state`: ``HOME/state.duckdb``, its schema and its connections.
- :mod:`npr_pipeline.store.ledger`: the submission ledger and the lopenr claims.
- :mod:`npr_pipeline.store.batches`: the daily route's intake batches (commit and history).
- :mod:`npr_pipeline.store.events`: the daily event tables (Delta Lake).
- :mod:`npr_pipeline.store.consolidated`: the fold of the events into the monthly shapes.
"""
