"""``make soak``: the property and kill tests again, with many more examples and kill points.

``make test`` runs every soak-marked test at a size that keeps the suite under five minutes;
``make soak`` (``NPR_SOAK=1 pytest -m soak -n 2``, also run by ``.ci/run``) runs only them,
scaled up.
"""

from __future__ import annotations

import os

SOAK = os.environ.get("NPR_SOAK") == "1"
SCALE = 20


def examples(n: int) -> int:
    """Hypothesis examples for a property test: ``n`` in ``make test``, ``SCALE * n`` in soak."""
    return n * SCALE if SOAK else n
