"""The Dagster layer: assets, checks, partitions, sensors, schedules and resources.

Thin by design: every asset calls the domain core in ``npr_pipeline``.
"""
