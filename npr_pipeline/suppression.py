"""Primary and secondary small-cell suppression with an exact audit: one rule for every table.

Used by the research extracts (a two-way table with its row and column totals) and by
ventetider (counts per group type, published with the totals they sum to). RULES.md: counts
from 1 to the threshold minus one are hidden (primary), and further cells wherever a hidden
value could be recovered from what is published (secondary).

The general form: published ``values`` (one per cell) and the linear ``relations`` that hold
between them whatever the data (each row r says sum_c r[c] * value[c] = 0: a total minus its
parts, or two cells that count the same records). A hidden value is recoverable when its unit
vector lies in the row space of the relations restricted to the hidden cells (move the visible
values to the right-hand side: the hidden value is then fixed). Two repairs alternate until
nothing is recoverable: every ``line`` (a published total with its parts, total last) holding
exactly one hidden value gets a second one, the smallest visible value of the line (least
information lost; non-zero counts first, since a hidden zero protects little); then the first
recoverable value gets one more hidden neighbour (a part or total of a line it is in, else any
visible cell of a relation that fixes it). The line rule alone is not enough (a hidden cell on
no cycle of hidden cells is still fixed by the totals); the audit is exact. It ends: each round
hides one more cell, and with every cell hidden nothing is recoverable.

Where the relations come from: for a two-way table, its lines (``with_margins``); for cells
that are sums over a set of atoms (the finest combinations the records are counted in), every
relation between them: the left null space of the cell x atom incidence (``relations_of``).
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


# -- the general rule -----------------------------------------------------------------------
def protect(
    values: np.ndarray, relations: np.ndarray, lines: list[list[int]], threshold: int
) -> tuple[np.ndarray, np.ndarray]:
    """(primary, hidden) masks over ``values``: nothing hidden is recoverable afterwards."""
    values = np.asarray(values)
    primary = (values > 0) & (values < threshold)
    hidden = primary.copy()
    while _repair_lines(values, lines, hidden) or _repair_recoverable(
        values, relations, lines, hidden
    ):
        pass
    if recoverable_cells(relations, hidden):  # the audit: never publish a recoverable value
        raise AssertionError("suppression left a recoverable value")
    return primary, hidden


def relations_of(members: np.ndarray) -> np.ndarray:
    """Every linear relation between cells that are sums over atoms (``members``: cells x atoms,
    1 where the cell counts the atom): a basis of the left null space, one relation a row."""
    if members.size == 0:
        return np.zeros((0, members.shape[0]))
    # y is a relation iff y @ members = 0 iff y is in the null space of the (small, symmetric)
    # cells x cells matrix members @ members.T: cheaper than an SVD of members itself
    m = np.asarray(members, dtype=float)
    eigenvalues, vectors = np.linalg.eigh(m @ m.T)
    tol = max(eigenvalues.max(initial=0.0), 1.0) * len(m) * 1e-12
    return vectors[:, eigenvalues <= tol].T


def recoverable_cells(relations: np.ndarray, hidden: np.ndarray) -> list[int]:
    """Hidden cells whose value the visible values and the relations fix exactly."""
    unknowns = np.flatnonzero(hidden)
    if not len(unknowns) or not len(relations):
        return []
    restricted = relations[:, unknowns]
    _, s, vt = np.linalg.svd(restricted, full_matrices=False)
    tol = s.max(initial=0.0) * max(restricted.shape) * np.finfo(float).eps
    basis = vt[s > max(tol, 1e-9)]
    # e_i lies in the row space iff its projection onto the space keeps all of its length
    reach = (basis**2).sum(axis=0)
    return [int(unknowns[i]) for i in np.flatnonzero(reach > 1 - 1e-6)]


def _smallest_visible(values: np.ndarray, members: list[int], hidden: np.ndarray) -> int | None:
    visible = [e for e in members if not hidden[e]]
    if not visible:
        return None
    return min(visible, key=lambda e: (values[e] == 0, values[e], e))


def _repair_lines(values: np.ndarray, lines: list[list[int]], hidden: np.ndarray) -> bool:
    """Hide one more value in every line with exactly one hidden; True if anything changed."""
    changed = False
    for line in lines:
        if sum(bool(hidden[e]) for e in line) == 1:
            pick = _smallest_visible(values, line, hidden)
            if pick is not None:
                hidden[pick] = changed = True
    return changed


def _repair_recoverable(
    values: np.ndarray, relations: np.ndarray, lines: list[list[int]], hidden: np.ndarray
) -> bool:
    """Hide the smallest visible neighbour of the first recoverable value; True if changed."""
    for entry in recoverable_cells(relations, hidden):
        members = [e for line in lines if entry in line for e in line]
        pick = _smallest_visible(values, members, hidden)
        if pick is None:  # no line holds a visible neighbour: a cell of a relation fixing it
            involved = np.abs(relations[np.abs(relations[:, entry]) > 1e-9]).max(axis=0)
            pick = _smallest_visible(values, [int(c) for c in np.flatnonzero(involved > 1e-9)],
                                     hidden)  # fmt: skip
        if pick is not None:
            hidden[pick] = True
            return True
    return False


# -- a two-way table with its margins (research extracts) -----------------------------------
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


def _line_relations(shape: tuple[int, int], lines: list[list[Entry]]) -> np.ndarray:
    """Each line as a relation over the flattened table: its members minus its total."""
    relations = np.zeros((len(lines), shape[0] * shape[1]))
    for i, line in enumerate(lines):
        for e in line[:-1]:
            relations[i, np.ravel_multi_index(e, shape)] += 1.0
        relations[i, np.ravel_multi_index(line[-1], shape)] -= 1.0
    return relations


def _flat(shape: tuple[int, int], lines: list[list[Entry]]) -> list[list[int]]:
    return [[int(np.ravel_multi_index(e, shape)) for e in line] for line in lines]


def suppress(counts: np.ndarray, threshold: int) -> Suppressed:
    """Primary and secondary suppression of ``counts`` (rows x columns) and its margins."""
    table, lines = with_margins(np.asarray(counts))
    primary, hidden = protect(
        table.ravel(), _line_relations(table.shape, lines), _flat(table.shape, lines), threshold
    )
    primary, hidden = primary.reshape(table.shape), hidden.reshape(table.shape)
    return Suppressed(table, primary, hidden & ~primary)


def recoverable(table: np.ndarray, lines: list[list[Entry]], hidden: np.ndarray) -> list[Entry]:
    """Hidden values of a two-way table its published values and totals determine exactly."""
    found = recoverable_cells(_line_relations(table.shape, lines), np.asarray(hidden).ravel())
    return [tuple(int(i) for i in np.unravel_index(f, table.shape)) for f in found]
