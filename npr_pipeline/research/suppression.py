"""Primary and secondary small-cell suppression for a two-way table with published margins.

Primary: every count from 1 to threshold-1 is hidden, margins included (a row total of 2 is as
telling as a cell of 2). Secondary: a table is published with its row and column totals, so a
line (a row or column with its total) holding exactly one hidden value gives it away by
subtraction. Lines are repaired until each holds none or at least two hidden values, always
adding the smallest visible value of the line (least information lost; non-zero counts first,
since a hidden zero protects little). The line rule is not enough on its own (a hidden cell on
no cycle of hidden cells is still fixed by the totals), so an exact audit follows: a hidden
value is recoverable when its unit vector lies in the row space of the line equations
restricted to the hidden values; each recoverable value gets one more hidden neighbour, and both
steps repeat until nothing is recoverable. Independent of the ventetider rules on purpose.

A one-column (or one-row) table has no separate row (column) totals: they would equal the cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

Entry = tuple[int, int]


@dataclass(frozen=True)
class Suppressed:
    """The table with margins (last row and column are totals) and what is hidden."""

    values: np.ndarray  # (rows + 1) x (cols + 1) or with a dropped margin, see ``margins``
    primary: np.ndarray
    secondary: np.ndarray

    @property
    def hidden(self) -> np.ndarray:
        return self.primary | self.secondary


def with_margins(counts: np.ndarray) -> tuple[np.ndarray, list[list[Entry]]]:
    """The table with its totals appended, and its lines (each: members, the total last).

    Row totals are added only when there is more than one column, column totals only when
    there is more than one row (a total over one value is that value).
    """
    rows, cols = counts.shape
    table = counts.astype(np.int64)
    if cols > 1:
        table = np.hstack([table, table.sum(axis=1, keepdims=True)])
    if rows > 1:
        table = np.vstack([table, table.sum(axis=0, keepdims=True)])
    height, width = table.shape
    lines: list[list[Entry]] = []
    if cols > 1:
        lines += [[(r, c) for c in range(width)] for r in range(height)]
    if rows > 1:
        lines += [[(r, c) for r in range(height)] for c in range(width)]
    return table, lines


def suppress(counts: np.ndarray, threshold: int) -> Suppressed:
    """Primary and secondary suppression of ``counts`` (rows x columns) and its margins."""
    table, lines = with_margins(np.asarray(counts))
    primary = (table > 0) & (table < threshold)
    hidden = primary.copy()
    while _repair_lines(table, lines, hidden) or _repair_recoverable(table, lines, hidden):
        pass
    return Suppressed(table, primary, hidden & ~primary)


def _smallest_visible(table: np.ndarray, members: list[Entry], hidden: np.ndarray) -> Entry | None:
    visible = [e for e in members if not hidden[e]]
    if not visible:
        return None
    return min(visible, key=lambda e: (table[e] == 0, table[e], e))


def _repair_lines(table: np.ndarray, lines: list[list[Entry]], hidden: np.ndarray) -> bool:
    """Hide one more value in every line with exactly one hidden; True if anything changed."""
    changed = False
    for line in lines:
        if sum(bool(hidden[e]) for e in line) == 1:
            pick = _smallest_visible(table, line, hidden)
            if pick is not None:
                hidden[pick] = changed = True
    return changed


def recoverable(table: np.ndarray, lines: list[list[Entry]], hidden: np.ndarray) -> list[Entry]:
    """Hidden values the published values and totals determine exactly (linear algebra).

    Each line says: members minus total = 0. Move the visible values to the right-hand side;
    a hidden value is determined iff its unit vector is in the row space of what remains.
    """
    unknowns = [tuple(int(i) for i in e) for e in zip(*np.nonzero(hidden), strict=True)]
    if not unknowns:
        return []
    index = {e: i for i, e in enumerate(unknowns)}
    equations = []
    for line in lines:
        total = line[-1]
        row = np.zeros(len(unknowns))
        for e in line:
            if e in index:
                row[index[e]] += -1.0 if e == total else 1.0
        if row.any():
            equations.append(row)
    if not equations:
        return []
    matrix = np.array(equations)
    rank = np.linalg.matrix_rank(matrix)
    found = []
    for e, i in index.items():
        unit = np.zeros(len(unknowns))
        unit[i] = 1.0
        if np.linalg.matrix_rank(np.vstack([matrix, unit])) == rank:
            found.append(e)
    return found


def _repair_recoverable(table: np.ndarray, lines: list[list[Entry]], hidden: np.ndarray) -> bool:
    """Hide the smallest visible neighbour of the first recoverable value; True if changed."""
    for entry in recoverable(table, lines, hidden):
        members = [e for line in lines if entry in line for e in line]
        pick = _smallest_visible(table, members, hidden)
        if pick is not None:
            hidden[pick] = True
            return True
    return False
