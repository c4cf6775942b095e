"""The fast suppression audit against the dense reference, on random published hierarchies.

``recoverable_cells`` (twins, peeling, trees, rank test per cyclic part) must give exactly the
answer of ``recoverable_cells_dense`` (one SVD of every relation restricted to the hidden
cells), and ``relations_of_partitions`` must span the same relations as ``relations_of``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npr_pipeline import suppression
from tests.soak import examples


@st.composite
def hierarchies(draw: st.DrawFn, crossed: bool = True) -> tuple[np.ndarray, int]:
    """(labels, cells): atoms x groupings for all > RHF > trust > unit and, when ``crossed``,
    fagområde, sector and ownership across it (a unit counts atoms in one or more fagområder)."""
    units = draw(st.integers(1, 14))
    trusts = draw(st.integers(1, 5))
    trust_of = np.array(draw(st.lists(st.integers(0, trusts - 1), min_size=units, max_size=units)))
    rhf_of = trust_of % draw(st.integers(1, 3))
    unit_of_atom = np.arange(units)
    groupings = [np.zeros(units, dtype=np.int64), rhf_of, trust_of, unit_of_atom]
    if crossed:
        fags = draw(st.integers(1, 6))
        extra = draw(st.lists(st.integers(0, units - 1), max_size=2 * units))
        unit_of_atom = np.array([*range(units), *extra], dtype=np.int64)
        fag = np.array(draw(st.lists(st.integers(0, fags - 1), min_size=len(unit_of_atom),
                                     max_size=len(unit_of_atom))))  # fmt: skip
        sector = np.array(draw(st.lists(st.integers(0, 2), min_size=units, max_size=units)))
        groupings = [g[unit_of_atom] for g in groupings[:3]] + [unit_of_atom, fag]
        groupings += [sector[unit_of_atom], (sector[unit_of_atom] + trust_of[unit_of_atom]) % 2]
    labels, offset = [], 0
    for grouping in groupings:  # each grouping's distinct values become cells of their own
        _, cell = np.unique(grouping, return_inverse=True)
        labels.append(cell.ravel() + offset)
        offset += int(cell.max()) + 1
    atoms = {tuple(row) for row in np.stack(labels, axis=1).tolist()}
    return np.array(sorted(atoms), dtype=np.int64), offset


def _members(labels: np.ndarray, cells: int) -> np.ndarray:
    members = np.zeros((cells, len(labels)), dtype=bool)
    for g in range(labels.shape[1]):
        members[labels[:, g], np.arange(len(labels))] = True
    return members


def _hidden(draw: st.DrawFn, cells: int) -> np.ndarray:
    """A random suppression pattern, from a few hidden cells to all of them."""
    share = draw(st.integers(1, 5))
    return np.array(draw(st.lists(st.integers(0, 4), min_size=cells, max_size=cells))) < share


@pytest.mark.soak
@settings(max_examples=examples(60), deadline=None)
@given(st.data())
def test_fast_audit_agrees_with_the_dense_audit_on_random_hierarchies(data: st.DataObject) -> None:
    labels, cells = data.draw(hierarchies())
    sparse = suppression.relations_of_partitions(labels, cells)
    dense = suppression.relations_of(_members(labels, cells))
    # the same space: every sparse relation holds, and as many independent ones
    assert np.allclose(sparse.dense() @ _members(labels, cells), 0)
    assert np.linalg.matrix_rank(sparse.dense()) == len(dense)
    for _ in range(3):
        hidden = _hidden(data.draw, cells)
        expected = suppression.recoverable_cells_dense(dense, hidden)
        assert suppression.recoverable_cells(sparse, hidden) == expected
        assert suppression.recoverable_cells(dense, hidden) == expected


@pytest.mark.soak
@settings(max_examples=examples(40), deadline=None)
@given(st.data())
def test_peeling_alone_is_exact_on_a_single_hierarchy(data: st.DataObject) -> None:
    """all > RHF > trust > unit only: every relation/unknown graph is a tree, so the audit
    never needs a rank test, and peeling finds exactly what the dense audit finds."""
    labels, cells = data.draw(hierarchies(crossed=False))
    sparse = suppression.relations_of_partitions(labels, cells)
    hidden = _hidden(data.draw, cells)
    expected = suppression.recoverable_cells_dense(sparse, hidden)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(suppression, "_fixed_dense", _no_rank_test)
        assert suppression.recoverable_cells(sparse, hidden) == expected


def _no_rank_test(restricted: np.ndarray) -> np.ndarray:
    raise AssertionError("a tree-shaped system needed the rank test")


@pytest.mark.soak
@settings(max_examples=examples(40), deadline=None)
@given(st.data())
def test_protect_leaves_nothing_the_dense_audit_recovers(data: st.DataObject) -> None:
    labels, cells = data.draw(hierarchies())
    counts = np.array(data.draw(st.lists(st.sampled_from([1, 2, 3, 4, 6, 9, 20]),
                                         min_size=len(labels), max_size=len(labels))))  # fmt: skip
    members = _members(labels, cells)
    values = members.astype(np.int64) @ counts
    relations = suppression.relations_of_partitions(labels, cells)
    primary, hidden = suppression.protect(values, relations, [], threshold=5)  # the audit alone
    assert (hidden >= primary).all()
    assert not suppression.recoverable_cells_dense(suppression.relations_of(members), hidden)


def test_a_sector_of_one_unit_is_a_relation_and_twins_stay_hidden() -> None:
    # atoms: (all, trust, unit, sector); units 3 and 4 in trust 1, unit 5 in trust 2; sector 6
    # holds units 3 and 4, sector 7 only unit 5 (so sector 7 equals unit 5)
    labels = np.array([[0, 1, 3, 6], [0, 1, 4, 6], [0, 2, 5, 7]])
    relations = suppression.relations_of_partitions(labels, 8)
    assert len(relations) == len(suppression.relations_of(_members(labels, 8)))
    hidden = np.zeros(8, dtype=bool)
    hidden[[3, 4]] = True  # twins: the same trust, the same sector
    assert suppression.recoverable_cells(relations, hidden) == []
    hidden[[5]] = True  # unit 5 = trust 2 = sector 7, both published
    assert suppression.recoverable_cells(relations, hidden) == [5]
