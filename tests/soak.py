"""``make soak``: the property and kill tests again, with many more examples and kill points.

``make test`` runs the soak-marked property tests at a size that keeps the suite under five
minutes, and not the kill tests (``KILL_TEST``: a real ``kill -9`` and a rerun at each point,
seconds apiece); ``make soak`` (``NPR_SOAK=1 pytest -m soak -n 2``, also run by ``.ci/run``)
runs only the soak-marked tests, scaled up, every kill point and huge file included
(``HUGE_TEST``: a file of the default size limit's gigabyte, archived).
"""

from __future__ import annotations

import os

import pytest

SOAK = os.environ.get("NPR_SOAK") == "1"
SCALE = 20
KILL_TEST = pytest.mark.skipif(not SOAK, reason="kill -9 and a rerun per point: make soak only")
HUGE_TEST = pytest.mark.skipif(not SOAK, reason="a gigabyte archived: make soak only")


def examples(n: int) -> int:
    """Hypothesis examples for a property test: ``n`` in ``make test``, ``SCALE * n`` in soak."""
    return n * SCALE if SOAK else n
