"""The deadline-day report page of a period's production run."""
