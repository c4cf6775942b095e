"""YAML as the project reads it: the safe loader, through libyaml when PyYAML was built with it.

The pure-Python safe loader costs ~8x the C one on our files (the data dictionary, the
catalogue, every message mapping: ~0.17 CPU s against 0.02 per process that reads them all, and
intake's check workers each read the catalogue again). Both build the same objects with the
same safe constructor; only the scanner and parser differ.
"""

from __future__ import annotations

from typing import IO, Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(source: str | IO[str]) -> Any:
    """The document ``source`` holds, as :func:`yaml.safe_load` reads it."""
    return yaml.load(source, Loader=_LOADER)  # noqa: S506 - a safe loader, C or Python
