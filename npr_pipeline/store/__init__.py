"""The register's state, at the bottom of the core: intake writes it; quality, production and
research read it. Nothing here imports intake, quality, production, research or Dagster.

- :mod:`npr_pipeline.store.state`: ``HOME/state.duckdb``, its schema and its connections.
- :mod:`npr_pipeline.store.ledger`: the submission ledger and the lopenr claims.
"""
