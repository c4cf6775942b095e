"""What a Delta table's log folder says without replaying it: one listing and one small file.

Intake keeps its Delta tables maintained after each run that commits to them (the monthly
tables checkpointed and vacuumed, the daily event tables compacted and checkpointed). A run
killed after its last commit leaves a table's log ahead of its last checkpoint, and its rerun,
committing nothing there, must still see that the work is owed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path


def checkpointed(log: Path) -> int:
    """The version of a Delta log's last checkpoint, -1 without one."""
    last = log / "_last_checkpoint"
    return json.loads(last.read_text())["version"] if last.is_file() else -1


def ahead_of_checkpoint(log: Path) -> bool:
    """Whether the log folder ``log`` holds a commit newer than its last checkpoint (False for
    a table never written)."""
    try:
        names = os.listdir(log)
    except FileNotFoundError:
        return False
    versions = [int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit()]
    return max(versions, default=-1) > checkpointed(log)
