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
recoverable value gets one more hidden cell: the smallest visible cell of the combination of
published values that gives it away (``revealing``, solved on its connected part of relations
and hidden cells; a ``last_resort`` cell such as the grand total only if nothing else is there),
so the recovery is broken and nothing is hidden that it did not read. The line rule alone is not
enough (a hidden cell on no cycle of hidden cells is still fixed by the totals); the audit is
exact. It ends: each round hides one more cell, and with every cell hidden nothing is
recoverable. Last, large secondary cells are shown again where the others protect without them
(``_prune``).

Where the relations come from: for a two-way table, its lines (``with_margins``); for cells
that are sums over a set of atoms (the finest combinations the records are counted in), every
relation between them: the left null space of the cell x atom incidence (``relations_of``,
dense), or, where every grouping partitions the atoms as in ventetider, a sparse basis of the
same space (``relations_of_partitions``: a total minus its parts, and one relation per
connected part of units x fagområder). A one-column (or one-row) table has no separate row
(column) totals: they would equal the cells.

The audit (``recoverable_cells``) gives the dense rank test's answer without its cubic cost:
hidden cells with identical columns (twins) stand as one unknown, relations with one unknown
left fix it (peeling, repeated), a connected part whose relation graph is a tree is then done
(nothing more is fixed), and only parts with a cycle get the rank test, on their own few
unknowns. ``recoverable_cells_dense`` is the reference it is tested against.
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


# -- relations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Relations:
    """Sparse linear relations between ``cells`` values: entry k gives relation ``row[k]`` the
    coefficient ``coef[k]`` on cell ``cell[k]``; each relation sums to zero. Entries are unique
    per (row, cell) and non-zero."""

    row: np.ndarray
    cell: np.ndarray
    coef: np.ndarray
    count: int  # relations
    cells: int

    @classmethod
    def of(cls, row: np.ndarray, cell: np.ndarray, coef: np.ndarray, cells: int) -> Relations:
        """From entries in any order (duplicates are added, zeros dropped)."""
        row, cell = np.asarray(row, dtype=np.int64), np.asarray(cell, dtype=np.int64)
        key, where = np.unique(row * cells + cell, return_inverse=True)
        total = np.bincount(where, weights=np.asarray(coef, dtype=float), minlength=len(key))
        keep = total != 0
        count = int(row.max()) + 1 if len(row) else 0
        return cls(key[keep] // cells, key[keep] % cells, total[keep], count, cells)

    @classmethod
    def from_rows(cls, rows: list[tuple[list[int], list[float]]], cells: int) -> Relations:
        """One relation per (cells, coefficients)."""
        lengths = [len(members) for members, _ in rows]
        flat = [c for members, _ in rows for c in members]
        coefs = [k for _, coefficients in rows for k in coefficients]
        relations = cls.of(np.repeat(np.arange(len(rows)), lengths), flat, coefs, cells)
        return cls(relations.row, relations.cell, relations.coef, len(rows), cells)

    @classmethod
    def from_dense(cls, matrix: np.ndarray) -> Relations:
        """From a relations x cells matrix; entries below 1e-12 of its largest are zero."""
        matrix = np.asarray(matrix, dtype=float).reshape(len(matrix), -1)
        scale = np.abs(matrix).max(initial=0.0)
        row, cell = np.nonzero(np.abs(matrix) > scale * 1e-12)
        relations = cls.of(row, cell, matrix[row, cell], matrix.shape[1])
        return cls(relations.row, relations.cell, relations.coef, len(matrix), matrix.shape[1])

    def dense(self) -> np.ndarray:
        matrix = np.zeros((self.count, self.cells))
        matrix[self.row, self.cell] = self.coef
        return matrix

    def __len__(self) -> int:
        return self.count


def _as_relations(relations: np.ndarray | Relations) -> Relations:
    return relations if isinstance(relations, Relations) else Relations.from_dense(relations)


def relations_of(members: np.ndarray) -> np.ndarray:
    """Every linear relation between cells that are sums over atoms (``members``: cells x atoms,
    1 where the cell counts the atom): a basis of the left null space, one relation a row.
    Dense and cubic in the cells: for cells that are blocks of partitions of the atoms (every
    grouping of a published table) ``relations_of_partitions`` gives the same space sparsely."""
    if members.size == 0:
        return np.zeros((0, members.shape[0]))
    # y is a relation iff y @ members = 0 iff y is in the null space of the (small, symmetric)
    # cells x cells matrix members @ members.T: cheaper than an SVD of members itself
    m = np.asarray(members, dtype=float)
    eigenvalues, vectors = np.linalg.eigh(m @ m.T)
    tol = max(eigenvalues.max(initial=0.0), 1.0) * len(m) * 1e-12
    return vectors[:, eigenvalues <= tol].T


def relations_of_partitions(labels: np.ndarray, cells: int) -> Relations:
    """Every linear relation between ``cells`` cells that are blocks of partitions of the atoms
    (``labels``: atoms x groupings, the cell of each atom in each grouping; each grouping's cells
    cover every atom once), as a sparse basis of the same space ``relations_of`` spans.

    A grouping whose cells are unions of another's (a trust of units, all of anything) is
    *derived*: each of its cells minus the cells it is made of is a relation, taking the
    coarsest grouping it is made of (an RHF of trusts, not of units: so the relations of one
    hierarchy form a tree, which the audit solves by peeling alone). The others are *bases*.
    With one base there is nothing more. With two (units and fagområder: the margins of a units
    x fagområder table whose inner cells are not published) the relations left are one per
    connected part of the bipartite graph with an edge per atom: the sum of the one base's cells
    in it minus the other's (the left null space of a connected bipartite graph's incidence is
    exactly that). With three or more, the bases' relations come from ``relations_of`` on their
    cells. Complete: the relations are independent (each derived one has a cell of its own that
    no relation of a finer grouping holds), and there are as many as the cells less the rank of
    the incidence. A cell no atom falls in is a relation of its own (it is 0).
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(len(labels), -1)
    if (labels < 0).any() or (labels >= cells).any():
        raise ValueError("every atom needs a cell in every grouping")
    rows: list[tuple[list[int], list[float]]] = []
    sizes = [len(np.unique(labels[:, g])) for g in range(labels.shape[1])]
    bases: list[int] = []
    done: list[int] = []  # finest first
    for g in sorted(range(labels.shape[1]), key=lambda g: (-sizes[g], g)):
        finer = [f for f in done if _coarsens(labels[:, f], labels[:, g])]
        done.append(g)
        if not finer:
            bases.append(g)
            continue
        made_of = finer[-1]  # the coarsest grouping g is made of: a hierarchy stays a tree
        pairs = distinct_pairs(labels[:, g], labels[:, made_of])  # (derived cell, part), sorted
        for cell, parts in _split(pairs[:, 0], pairs[:, 1]):
            rows.append(([*parts, cell], [1.0] * len(parts) + [-1.0]))
    if len(bases) == 2:
        pairs = distinct_pairs(labels[:, bases[0]], labels[:, bases[1]])
        part = _components(cells, pairs[:, 0], pairs[:, 1])
        ends = [np.unique(pairs[:, side]) for side in (0, 1)]
        sides = [dict(_split(part[end], end)) for end in ends]  # part -> its cells, each side
        for label, one in sides[0].items():
            other = sides[1][label]
            rows.append(([*one, *other], [1.0] * len(one) + [-1.0] * len(other)))
    elif len(bases) > 2:
        base_cells = np.unique(labels[:, bases])
        members = np.zeros((len(base_cells), len(labels)), dtype=bool)
        for b in bases:
            members[np.searchsorted(base_cells, labels[:, b]), np.arange(len(labels))] = True
        for relation in relations_of(members):
            used = np.abs(relation) > 1e-12 * np.abs(relation).max()
            rows.append((base_cells[used].tolist(), relation[used].tolist()))
    for empty in np.setdiff1d(np.arange(cells), labels).tolist():
        rows.append(([empty], [1.0]))
    return Relations.from_rows(rows, cells)


def _split(keys: np.ndarray, values: np.ndarray) -> list[tuple[int, list[int]]]:
    """(key, its values) for each key, keys ascending, values in their order."""
    order = np.argsort(keys, kind="stable")
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    groups = np.split(values, starts[1:])
    return [(int(k), g.tolist()) for k, g in zip(keys[starts], groups, strict=True)]


def _coarsens(fine: np.ndarray, coarse: np.ndarray) -> bool:
    """Whether every cell of ``fine`` lies in one cell of ``coarse``."""
    return len(distinct_pairs(fine, coarse)) == len(np.unique(fine))


def distinct_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The distinct (a, b) pairs (non-negative integers), sorted: ``np.unique(axis=0)`` on one
    integer key instead of rows, many times faster."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    width = int(b.max(initial=0)) + 1
    key = np.unique(a * width + b)
    return np.stack([key // width, key % width], axis=1)


def _components(nodes: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected parts of a graph (edges a[k]-b[k]): a label per node (union-find)."""
    parent = list(range(nodes))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for x, y in zip(np.asarray(a).tolist(), np.asarray(b).tolist(), strict=True):
        rx, ry = root(x), root(y)
        if rx != ry:
            parent[max(rx, ry)] = min(rx, ry)
    return np.array([root(x) for x in range(nodes)], dtype=np.int64)


# -- the audit ---------------------------------------------------------------------------------
def recoverable_cells(relations: np.ndarray | Relations, hidden: np.ndarray) -> list[int]:
    """Hidden cells whose value the visible values and the relations fix exactly.

    The same answer as ``recoverable_cells_dense`` (e_h in the row space of the relations
    restricted to the hidden cells), in steps that keep that answer and scale:

    1. *Twins.* Hidden cells with the same column (the same coefficients in the same relations)
       are never fixed (raise one, lower the other: every relation still holds) and can stand as
       one unknown, their sum, without changing what is fixed of any other cell (the solutions
       map onto each other). At national scale most hidden units are twins (same trust, sector,
       ownership), so this shrinks the system to a few hundred unknowns.
    2. *Peeling.* A relation with exactly one unknown left fixes it; it is then known, and the
       step repeats. Everything peeling fixes is fixed.
    3. *Trees.* After peeling every relation left has two or more unknowns. In a connected part
       whose relation/unknown graph is a tree (edges = non-zero coefficients; a tree iff
       edges = nodes - 1; every hierarchy is one), nothing more is fixed: set any unknown to 1
       and walk the tree outwards, giving each relation's one further unknown the value that
       balances it and the others 0: a solution of the homogeneous system that moves it.
    4. *The rest.* Parts with a cycle get the exact rank test, dense, on their own unknowns.
    """
    rel = _as_relations(relations)
    hidden = np.asarray(hidden, dtype=bool)
    keep = hidden[rel.cell]
    row, cell, coef = rel.row[keep], rel.cell[keep], rel.coef[keep]
    if not len(cell):
        return []
    # 1. twins: group the hidden cells by their column (padded (row, coefficient bits) pairs)
    order = np.lexsort((row, cell))
    row, cell, coef = row[order], cell[order], coef[order]
    cells, start, degree = np.unique(cell, return_index=True, return_counts=True)
    position = np.arange(len(cell)) - np.repeat(start, degree)
    owner = np.repeat(np.arange(len(cells)), degree)
    column = np.full((len(cells), 2 * int(degree.max())), -1, dtype=np.int64)
    column[owner, 2 * position] = row
    column[owner, 2 * position + 1] = coef.view(np.int64)
    _, first, unknown, twins = np.unique(
        column, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    unknown = unknown.ravel()
    # the system over the unknowns: each unknown's column is its first cell's
    stands = np.zeros(len(cells), dtype=bool)
    stands[first] = True
    entry = stands[owner]
    rows, where = np.unique(row[entry], return_inverse=True)
    variables, coefficients = unknown[owner[entry]], coef[entry]
    fixed = _peel(where, variables, len(rows), len(twins))
    fixed |= _rank_test(where, variables, coefficients, fixed)
    singles = fixed & (twins == 1)
    return sorted(int(c) for c in cells[first[singles]])


def _peel(rows: np.ndarray, variables: np.ndarray, nrows: int, nvars: int) -> np.ndarray:
    """Unknowns fixed by relations with one unknown left, repeatedly."""
    left = np.bincount(rows, minlength=nrows)
    by_row = _grouped(rows, variables, nrows)
    by_var = _grouped(variables, rows, nvars)
    fixed = [False] * nvars
    count = left.tolist()
    queue = np.flatnonzero(left == 1).tolist()
    while queue:
        r = queue.pop()
        if count[r] != 1:
            continue
        v = next(v for v in by_row[r] if not fixed[v])
        fixed[v] = True
        for other in by_var[v]:
            count[other] -= 1
            if count[other] == 1:
                queue.append(other)
    return np.array(fixed, dtype=bool)


def _grouped(keys: np.ndarray, values: np.ndarray, size: int) -> list[list[int]]:
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(size + 1))
    values = values[order].tolist()
    return [values[bounds[i] : bounds[i + 1]] for i in range(size)]


def _rank_test(
    rows: np.ndarray, variables: np.ndarray, coefficients: np.ndarray, fixed: np.ndarray
) -> np.ndarray:
    """Unknowns not ``fixed`` that the relations still fix: none in a tree-shaped connected
    part; the exact rank test in the others."""
    found = np.zeros(len(fixed), dtype=bool)
    live = ~fixed[variables]
    rows, variables, coefficients = rows[live], variables[live], coefficients[live]
    if not len(rows):
        return found
    row_ids, rows = np.unique(rows, return_inverse=True)
    var_ids, variables = np.unique(variables, return_inverse=True)
    nodes = len(row_ids) + len(var_ids)
    part = _components(nodes, rows, len(row_ids) + variables)
    for _, edges in _split(part[rows], np.arange(len(rows))):
        in_rows, at_row = np.unique(rows[edges], return_inverse=True)
        in_vars, at_var = np.unique(variables[edges], return_inverse=True)
        if len(edges) == len(in_rows) + len(in_vars) - 1:
            continue  # a tree: nothing more is fixed
        matrix = np.zeros((len(in_rows), len(in_vars)))
        matrix[at_row, at_var] = coefficients[edges]
        found[var_ids[in_vars[_fixed_dense(matrix)]]] = True
    return found


def _fixed_dense(restricted: np.ndarray) -> np.ndarray:
    """Which columns' unit vectors lie in the row space of ``restricted`` (SVD)."""
    _, s, vt = np.linalg.svd(restricted, full_matrices=False)
    tol = s.max(initial=0.0) * max(restricted.shape) * np.finfo(float).eps
    basis = vt[s > max(tol, 1e-9)]
    # e_i lies in the row space iff its projection onto the space keeps all of its length
    return (basis**2).sum(axis=0) > 1 - 1e-6


def recoverable_cells_dense(relations: np.ndarray | Relations, hidden: np.ndarray) -> list[int]:
    """The reference audit (cubic): e_h in the row space of the relations restricted to the
    hidden cells, by one SVD of the whole restricted matrix."""
    if isinstance(relations, Relations):
        relations = relations.dense()
    unknowns = np.flatnonzero(hidden)
    if not len(unknowns) or not len(relations):
        return []
    return [int(unknowns[i]) for i in np.flatnonzero(_fixed_dense(relations[:, unknowns]))]


# -- the general rule -----------------------------------------------------------------------
# the largest system (relations x hidden cells of one connected part) whose revealing
# combination is solved for densely; beyond it a repair takes the nearest neighbour instead
CERTIFICATE_LIMIT = 1500  # a dense system of at most 1,500^2 entries (18 MB)
# ``_prune`` tries to show again secondary cells of at least this many times the threshold,
# at most PRUNE_LIMIT of them (one audit each)
PRUNE_FACTOR = 10
PRUNE_LIMIT = 20


def protect(
    values: np.ndarray,
    relations: np.ndarray | Relations,
    lines: list[list[int]],
    threshold: int,
    last_resort: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(primary, hidden) masks over ``values``: nothing hidden is recoverable afterwards.

    ``last_resort`` marks cells (a grand total) hidden only where no other cell can protect."""
    values = np.asarray(values)
    relations = _as_relations(relations)
    primary = (values > 0) & (values < threshold)
    hidden = primary.copy()
    last = np.zeros(len(values), dtype=bool) if last_resort is None else np.asarray(last_resort)
    index = _Lines(values, lines, last)
    while index.repair(hidden) or _repair_recoverable(values, relations, index, hidden, last):
        pass
    _prune(values, relations, primary, hidden, last, threshold)
    if recoverable_cells(relations, hidden):  # the audit: never publish a recoverable value
        raise AssertionError("suppression left a recoverable value")
    return primary, hidden


def _prune(
    values: np.ndarray,
    relations: Relations,
    primary: np.ndarray,
    hidden: np.ndarray,
    last: np.ndarray,
    threshold: int,
) -> None:
    """Show again every large secondary cell (``PRUNE_FACTOR`` times the threshold or more)
    that the others protect without it: a last resort first, then the largest. The repairs
    pick each cell for one recovery, and later picks may cover it; a large cell hidden is what
    a reader misses. At most ``PRUNE_LIMIT`` cells are tried (one audit each)."""
    large = hidden & ~primary & ((values >= PRUNE_FACTOR * threshold) | last)
    cells = np.flatnonzero(large)
    order = cells[np.lexsort((cells, -values[cells], ~last[cells]))]
    for cell in order[:PRUNE_LIMIT].tolist():
        hidden[cell] = False
        if recoverable_cells(relations, hidden):
            hidden[cell] = True


def _smallest_visible(
    values: np.ndarray, members: np.ndarray, hidden: np.ndarray, last: np.ndarray
) -> int | None:
    """The visible member to hide next: a last resort after every other, non-zero before zero,
    smallest value, lowest index."""
    visible = members[~hidden[members]]
    if not len(visible):
        return None
    keys = (visible, values[visible], values[visible] == 0, last[visible])
    return int(visible[np.lexsort(keys)[0]])


class _Lines:
    """The lines as arrays, with the lines each cell is in."""

    def __init__(self, values: np.ndarray, lines: list[list[int]], last: np.ndarray) -> None:
        self.values = values
        self.last = last
        self.members = [np.asarray(line, dtype=np.int64) for line in lines]
        self.of_cell: dict[int, list[int]] = {}
        for i, line in enumerate(lines):
            for e in dict.fromkeys(line):
                self.of_cell.setdefault(int(e), []).append(i)

    def repair(self, hidden: np.ndarray) -> bool:
        """Hide one more value in every line with exactly one hidden (in order, each line seeing
        the values hidden for the lines before it); True if anything changed."""
        changed = False
        for members in self.members:
            if np.count_nonzero(hidden[members]) == 1:
                pick = _smallest_visible(self.values, members, hidden, self.last)
                if pick is not None:
                    hidden[pick] = changed = True
        return changed

    def around(self, entry: int) -> np.ndarray:
        """The members of every line ``entry`` is in."""
        lines = [self.members[i] for i in self.of_cell.get(entry, [])]
        return np.concatenate(lines) if lines else np.zeros(0, dtype=np.int64)


def _repair_recoverable(
    values: np.ndarray, relations: Relations, lines: _Lines, hidden: np.ndarray, last: np.ndarray
) -> bool:
    """Hide one more cell for the first recoverable value; True if changed.

    The cell hidden is the smallest visible cell of the combination of published values that
    gives the value away (``revealing``): hiding it breaks that combination, and nothing hidden
    is a cell the recovery did not use. Where the combination is too large to solve for, the
    smallest visible neighbour: a part or total of a line it is in, else a cell of a relation it
    is in, else (all of those hidden) of a relation one of those is in, and so on outwards."""
    for entry in recoverable_cells(relations, hidden):
        uses = revealing(relations, hidden, entry)
        if uses is not None:
            pick = _smallest_visible(values, uses, hidden, last)
        else:
            pick = _smallest_visible(values, lines.around(entry), hidden, last)
        reached, cells = np.zeros(len(values), dtype=bool), np.array([entry])
        while pick is None and len(cells):
            reached[cells] = True
            near = np.isin(relations.row, relations.row[np.isin(relations.cell, cells)])
            cells = np.unique(relations.cell[near])
            pick = _smallest_visible(values, cells, hidden, last)
            cells = cells[~reached[cells]]
        if pick is not None:
            hidden[pick] = True
            return True
    return False


def revealing(relations: Relations, hidden: np.ndarray, entry: int) -> np.ndarray | None:
    """The visible cells of a combination of relations that fixes hidden ``entry`` (a y with
    y @ relations zero on every hidden cell but ``entry``; its visible cells are what the
    recovery reads), or None when ``entry`` is not fixed or its connected part of relations
    and hidden cells is larger than ``CERTIFICATE_LIMIT``. Only relations of that part can
    take part (the others are zero on its hidden cells), so it is solved there, densely
    (least squares: the smallest such y)."""
    hidden = np.asarray(hidden, dtype=bool)
    on_hidden = hidden[relations.cell]
    row, cell = relations.row[on_hidden], relations.cell[on_hidden]
    part = _component_of(relations.count, row, cell, entry)
    if part is None:
        return None
    rows, cells = part
    if len(rows) * len(cells) > CERTIFICATE_LIMIT**2 or not len(rows):
        return None
    in_rows = np.isin(relations.row, rows)
    r, c, k = relations.row[in_rows], relations.cell[in_rows], relations.coef[in_rows]
    at_row = np.searchsorted(rows, r)
    inside = hidden[c]
    matrix = np.zeros((len(cells), len(rows)))  # hidden cells x relations: the transpose
    matrix[np.searchsorted(cells, c[inside]), at_row[inside]] = k[inside]
    target = (cells == entry).astype(float)
    y, *_ = np.linalg.lstsq(matrix, target, rcond=None)
    if np.abs(matrix @ y - target).max(initial=0.0) > 1e-6:
        return None  # not fixed
    weights = np.zeros(relations.cells)
    np.add.at(weights, c[~inside], y[at_row[~inside]] * k[~inside])
    scale = np.abs(weights).max(initial=0.0)
    if scale == 0:
        return None
    return np.flatnonzero(np.abs(weights) > scale * 1e-9)


def _component_of(
    count: int, row: np.ndarray, cell: np.ndarray, entry: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """(relations, hidden cells) of the connected part of ``entry`` in the graph with an edge
    per (relation, hidden cell) entry, both sorted; None if ``entry`` is in no relation."""
    by_cell = _split(cell, row)
    by_row = _split(row, cell)
    rows_of = dict(by_cell)
    cells_of = dict(by_row)
    if entry not in rows_of:
        return None
    seen_rows: set[int] = set()
    seen_cells = {entry}
    stack = [entry]
    while stack:
        for r in rows_of[stack.pop()]:
            if r in seen_rows:
                continue
            seen_rows.add(r)
            for c in cells_of[r]:
                if c not in seen_cells:
                    seen_cells.add(c)
                    stack.append(c)
    return np.array(sorted(seen_rows), dtype=np.int64), np.array(sorted(seen_cells), dtype=np.int64)


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


def _line_relations(shape: tuple[int, int], lines: list[list[Entry]]) -> Relations:
    """Each line as a relation over the flattened table: its members minus its total."""
    flat = _flat(shape, lines)
    rows = [(line, [1.0] * (len(line) - 1) + [-1.0]) for line in flat]
    return Relations.from_rows(rows, shape[0] * shape[1])


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
