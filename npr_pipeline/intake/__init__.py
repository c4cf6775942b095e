"""Intake (mottak): archive, gate, validate and parse every received submission."""
