"""The fold: daily events into the consolidated state, in the monthly tables' shapes (issue 13).

Every test writes real daily files, reads them with the real reader, appends them to real
Delta tables under committed batches and reads the state through DuckDB views; the expected
rows are written out by hand from the event rules of docs/messages/daily.md.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npr_pipeline.home import Home
from npr_pipeline.store.consolidated import daily_closings, register_daily_state, state_counts
from npr_pipeline.store.lake import TABLES, schema_of
from tests.daily_events import (
    UNIT,
    avslutning,
    commit_batch,
    henvisning,
    ident,
    kontakt,
    write_file,
)
from tests.soak import examples

T1, T2, T3, T4 = (f"2026-03-0{d}T10:00:00" for d in (1, 2, 3, 4))


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(root=tmp_path / "home").ensure()


class Sender:
    """Writes one unit's daily files with rising lopenr per kind."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.lopenr = folder, {}

    def file(self, kind: str, *records: tuple) -> Path:
        self.lopenr[kind] = self.lopenr.get(kind, 0) + 1
        return write_file(self.folder, kind, self.lopenr[kind], list(records))


@pytest.fixture
def send(tmp_path: Path) -> Sender:
    return Sender(tmp_path / "in")


def _state(home: Home, table: str, columns: str, as_of: int = 10**6) -> list[tuple]:
    con = duckdb.connect()
    register_daily_state(con, home, 2026, as_of)
    return con.execute(f"SELECT {columns} FROM daily_{table} ORDER BY ALL").fetchall()


def _episodes(home: Home, as_of: int = 10**6) -> list[tuple]:
    return _state(home, "episodes", "episodeID, pasientNr, fagomrade, submission_id", as_of)


def _diagnoses(home: Home) -> list[tuple]:
    return _state(home, "diagnoses", "episodeID, pasientNr, tilstNr, kodeNr, submission_id")


def test_n_creates_rows_in_exactly_the_monthly_shapes(home: Home, send: Sender) -> None:
    kontakt_file = send.file(
        "kontakt",
        kontakt(
            "K-1",
            "N",
            T1,
            diagnoses=[(1, "M161")],
            procedures=[(4, "NFB40")],
            reshID="4201115",
            fagomrade="050",
            innDatoTid="2026-03-01T08:00:00",
            henvisningsperiodeID="H-1",
        ),
    )
    ref_file = send.file("henvisning", henvisning("H-1", "N", T1, mottattDato="2026-02-01"))
    ident_file = send.file("ident", ident("P-1", "N", T1, fid="01010112345"))
    commit_batch(home, [kontakt_file, ref_file, ident_file])
    con = duckdb.connect()
    register_daily_state(con, home, 2026, 1)
    for table in TABLES:
        assert con.sql(f"SELECT * FROM daily_{table}").arrow().schema == schema_of(table), table
    k = kontakt_file.stem
    assert con.execute("SELECT * FROM daily_episodes").fetchall() == [
        (k, UNIT, 2026, "P-1", "K-1", "4201115", "050", None, None, None, None, None,
         datetime(2026, 3, 1, 8), None, "H-1", None, None, 6)
    ]  # fmt: skip
    assert con.execute("SELECT * FROM daily_diagnoses").fetchall() == [
        (k, UNIT, 2026, "P-1", "K-1", 1, "M161", "D")
    ]
    assert con.execute("SELECT * FROM daily_procedures").fetchall() == [
        (k, UNIT, 2026, "P-1", "K-1", 4, "NFB40", "K", None)
    ]
    assert con.execute(
        "SELECT submission_id, pasientNr, henvisningsperiodeID, mottattDato FROM daily_referrals"
    ).fetchall() == [(ref_file.stem, "P-1", "H-1", date(2026, 2, 1))]
    assert con.execute("SELECT * FROM daily_idents").fetchall() == [
        (ident_file.stem, UNIT, 2026, "P-1", "01010112345", "1", 6)
    ]
    assert con.execute("SELECT count(*) FROM daily_patients").fetchall() == [(0,)]


def test_m_replaces_the_record_and_its_children(home: Home, send: Sender) -> None:
    first = send.file("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161"), (2, "E119")],
                                         fagomrade="050", komNrHjem="0301"))  # fmt: skip
    fix = send.file("kontakt", kontakt("K-1", "M", T2, diagnoses=[(1, "I10")], fagomrade="110"))
    commit_batch(home, [first, fix])
    assert _episodes(home) == [("K-1", "P-1", "110", fix.stem)]
    assert _state(home, "episodes", "komNrHjem") == [(None,)]  # replaced in full
    assert _diagnoses(home) == [("K-1", "P-1", 1, "I10", fix.stem)]


def test_t_adds_a_diagnosis_and_overwrites_only_what_it_carries(home: Home, send: Sender) -> None:
    first = send.file("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161"), (2, "E119")],
                                         fagomrade="050", komNrHjem="0301"))  # fmt: skip
    more = send.file("kontakt", kontakt("K-1", "T", T2, diagnoses=[(3, "I10"), (2, "E110")],
                                        komNrHjem="4601"))  # fmt: skip
    commit_batch(home, [first, more])
    assert _state(home, "episodes", "fagomrade, komNrHjem, submission_id") == [
        ("050", "4601", more.stem)
    ]
    assert _diagnoses(home) == [
        ("K-1", "P-1", 1, "M161", first.stem),
        ("K-1", "P-1", 2, "E110", more.stem),
        ("K-1", "P-1", 3, "I10", more.stem),
    ]


def test_c_cancels_and_only_a_newer_n_recreates(home: Home, send: Sender) -> None:
    made = send.file("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161")]),
                     kontakt("K-2", "N", T1))  # fmt: skip
    gone = send.file("kontakt", kontakt("K-1", "C", T2), kontakt("K-2", "C", T2))
    late_old = send.file("kontakt", kontakt("K-1", "N", T1, fagomrade="999"))  # older than C
    again = send.file("kontakt", kontakt("K-2", "N", T3, fagomrade="110"))
    commit_batch(home, [made, gone])
    assert _episodes(home) == []
    assert _diagnoses(home) == []
    commit_batch(home, [late_old, again])
    assert _episodes(home) == [("K-2", "P-1", "110", again.stem)]


def test_out_of_order_files_give_the_order_of_endret_tidspunkt(home: Home, send: Sender) -> None:
    newest = send.file("kontakt", kontakt("K-1", "M", T3, fagomrade="300"))
    older = send.file("kontakt", kontakt("K-1", "M", T2, fagomrade="200"))
    created = send.file("kontakt", kontakt("K-1", "N", T1, fagomrade="100"))
    commit_batch(home, [newest])
    assert _episodes(home) == []  # an M for a key not yet known: ignored for now
    commit_batch(home, [older])
    commit_batch(home, [created])  # the N arrives last but is the oldest: both M's apply
    assert _episodes(home) == [("K-1", "P-1", "300", newest.stem)]


def test_duplicates_count_once(home: Home, send: Sender) -> None:
    event = kontakt("K-1", "N", T1, diagnoses=[(1, "M161")], fagomrade="050")
    first, copy = send.file("kontakt", event), send.file("kontakt", event)
    commit_batch(home, [copy])
    commit_batch(home, [first])
    assert _episodes(home) == [("K-1", "P-1", "050", first.stem)]  # lowest lopenr wins
    assert _diagnoses(home) == [("K-1", "P-1", 1, "M161", first.stem)]


def test_unknown_keys_and_n_for_an_existing_key_change_nothing(home: Home, send: Sender) -> None:
    made = send.file("kontakt", kontakt("K-1", "N", T1, fagomrade="050"))
    again = send.file("kontakt", kontakt("K-1", "N", T2, fagomrade="110"))
    stray = send.file("kontakt", kontakt("K-8", "M", T2), kontakt("K-9", "T", T2,
                      diagnoses=[(1, "I10")]), kontakt("K-7", "C", T2))  # fmt: skip
    commit_batch(home, [made, again, stray])
    assert _episodes(home) == [("K-1", "P-1", "050", made.stem)]
    assert _diagnoses(home) == []


def test_the_state_as_known_at_each_batch(home: Home, send: Sender) -> None:
    made = send.file("kontakt", kontakt("K-1", "N", T1, fagomrade="050"))
    fixed = send.file("kontakt", kontakt("K-1", "M", T2, fagomrade="110"))
    gone = send.file("kontakt", kontakt("K-1", "C", T3))
    batches = [commit_batch(home, [f]) for f in (made, fixed, gone)]
    assert [_episodes(home, b) for b in [0, *batches]] == [
        [],
        [("K-1", "P-1", "050", made.stem)],
        [("K-1", "P-1", "110", fixed.stem)],
        [],
    ]


def test_closings_and_the_counts_they_are_compared_with(home: Home, send: Sender) -> None:
    march = ("2026-03-01", "2026-03-31")
    contacts = send.file(
        "kontakt",
        kontakt("K-1", "N", T1, innDatoTid="2026-03-01T08:00:00"),
        kontakt("K-2", "N", T1, patient="P-2", innDatoTid="2026-02-27T08:00:00"),  # before it
        kontakt("K-3", "N", T1, patient="P-3", innDatoTid="2026-03-31T23:00:00"),
    )
    referrals = send.file(
        "henvisning",
        henvisning(
            "H-1", "N", T1, patient="P-2", mottattDato="2026-01-10", tjenestestart="2026-03-01"
        ),  # waited until the period's first day
        henvisning(
            "H-2", "N", T1, patient="P-4", mottattDato="2026-01-10", avviklingsdato="2026-02-28"
        ),  # ended before it
        henvisning("H-3", "N", T1, patient="P-5", mottattDato="2026-04-01"),  # after it
    )
    idents = send.file("ident", *(ident(f"P-{n}", "N", T1) for n in range(1, 6)))
    closing = send.file("avslutning", avslutning("A-3", "N", T4, march, {"1": 2, "2": 1}))
    closing_batch = commit_batch(home, [contacts, referrals, idents, closing])
    late = send.file("kontakt", kontakt("K-4", "N", T4, innDatoTid="2026-03-15T08:00:00"))
    commit_batch(home, [late])  # after the close: later runs see it, the closing's check not
    con = duckdb.connect()
    closings = daily_closings(con, home, 2026, 10**6)
    assert closings.select(["unit", "avslutningID", "postart", "antall", "batch"]).to_pylist() == [
        {"unit": UNIT, "avslutningID": "A-3", "postart": p, "antall": n, "batch": closing_batch}
        for p, n in (("1", 2), ("2", 1), ("3", 0))
    ]
    counted = state_counts(con, home, 2026, 10**6)
    rows = counted.select(["postart", "antall", "counted", "difference"]).to_pylist()
    assert rows == [
        {"postart": "1", "antall": 2, "counted": 2, "difference": 0},  # K-1, K-3
        {"postart": "2", "antall": 1, "counted": 1, "difference": 0},  # H-1
        {"postart": "3", "antall": 0, "counted": 3, "difference": -3},  # P-1, P-3, P-2
    ]
    fixed = send.file("avslutning", avslutning("A-3", "M", T4.replace("10:", "11:"), march,
                                               {"1": 2, "2": 1, "3": 3}))  # fmt: skip
    fixed_batch = commit_batch(home, [fixed])
    counted = state_counts(con, home, 2026, 10**6)
    assert counted.column("batch").to_pylist() == [fixed_batch] * 3
    assert counted.column("counted").to_pylist() == [3, 1, 3]  # now K-4 is known too
    assert counted.column("difference").to_pylist() == [-1, 0, 0]
    assert state_counts(con, home, 2026, closing_batch).column("counted").to_pylist() == [2, 1, 3]


# -- order independence -----------------------------------------------------------------------


def _event_files(send: Sender) -> list[Path]:
    """A set of files whose events interact: corrections, supplements, cancels, a duplicate."""
    return [
        send.file("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161")], fagomrade="050"),
                  kontakt("K-2", "N", T1)),
        send.file("kontakt", kontakt("K-1", "T", T2, diagnoses=[(2, "I10")])),
        send.file("kontakt", kontakt("K-1", "M", T3, diagnoses=[(5, "J45")], fagomrade="110"),
                  kontakt("K-2", "C", T2)),
        send.file("kontakt", kontakt("K-2", "N", T3, fagomrade="300"),
                  kontakt("K-3", "T", T2, diagnoses=[(1, "A")])),
        send.file("kontakt", kontakt("K-1", "T", T4, diagnoses=[(5, "J450")])),
        send.file("kontakt", kontakt("K-1", "N", T1, diagnoses=[(1, "M161")], fagomrade="050")),
    ]  # fmt: skip


def _full_state(home: Home) -> dict[str, list[tuple]]:
    con = duckdb.connect()
    register_daily_state(con, home, 2026, 10**6)
    return {t: con.execute(f"SELECT * FROM daily_{t} ORDER BY ALL").fetchall() for t in TABLES}


@settings(max_examples=examples(4), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(order=st.permutations(range(6)), cuts=st.sets(st.integers(1, 5), max_size=2))
def test_any_arrival_order_and_batching_gives_the_same_state(
    tmp_path_factory: pytest.TempPathFactory, order: list[int], cuts: set[int]
) -> None:
    root = tmp_path_factory.mktemp("perm")
    files = _event_files(Sender(root / "in"))
    reference = Home(root=root / "reference").ensure()
    commit_batch(reference, files)
    shuffled = Home(root=root / "shuffled").ensure()
    arrived = [files[i] for i in order]
    bounds = [0, *sorted(cuts), len(arrived)]
    for start, end in zip(bounds, bounds[1:], strict=False):
        commit_batch(shuffled, arrived[start:end])
    expected = _full_state(reference)
    assert expected["episodes"] and expected["diagnoses"]
    assert _full_state(shuffled) == expected


def test_the_units_filter(home: Home, send: Sender) -> None:
    commit_batch(home, [send.file("kontakt", kontakt("K-1", "N", T1))])
    con = duckdb.connect()
    register_daily_state(con, home, 2026, 1, units=["9999999"], prefix="other_")
    assert con.execute("SELECT count(*) FROM other_episodes").fetchall() == [(0,)]
    register_daily_state(con, home, 2026, 1, units=[UNIT])
    assert con.execute("SELECT count(*) FROM daily_episodes").fetchall() == [(1,)]
    assert con.execute("SELECT count(*) FROM daily_period_closings").fetchall() == [(0,)]
