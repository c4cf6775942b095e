"""The outbox's states as the tests read them: every row of ``outbox_items`` (none before the
table exists), read back through :func:`~npr_pipeline.feedback.states.read_states`."""

from __future__ import annotations

import duckdb

from npr_pipeline.feedback.states import read_states
from npr_pipeline.home import Home
from npr_pipeline.store.state import state_path


def outbox_states(home: Home, channel: str | None = None) -> list[dict]:
    """The states of the outbox's items (of ``channel``, if given), in id order."""
    if not state_path(home).exists():
        return []
    with duckdb.connect(str(state_path(home)), read_only=True) as con:
        if not con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'outbox_items'"
        ).fetchall()[0][0]:
            return []
        ids = [r[0] for r in con.execute("SELECT id FROM outbox_items").fetchall()]
    found = read_states(home, ids)
    return [found[i] for i in sorted(found) if channel in (None, found[i]["channel"])]
