"""The ledger table (npr_pipeline/store/ledger.py): the lopenr rule held by the database, the
one-time import of the JSON ledger, typed writes, and reading back whatever was written."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npr_pipeline.home import Home
from npr_pipeline.intake import run as run_module
from npr_pipeline.intake.reasons import Status
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.store.ledger import (
    INT64_MAX,
    LedgerRecord,
    LedgerTypeError,
    LopenrClaimed,
    has_record,
    known_submissions,
    load_failed,
    load_ledger,
    load_records,
    read_record,
    write_failed,
    write_record,
    write_records,
)
from tests.intake_files import decode, encode, fill_inbox
from tests.soak import examples
from tests.test_intake_isolation import _home, year  # noqa: F401 - the module's synth year


def _record(sid: str, lopenr: int | None = 7, status: str = "accepted", **kw) -> LedgerRecord:
    fields = {
        "submission_id": sid,
        "checksum": "c" * 64,
        "file": f"{sid}.xml",
        "size": 100,
        "received": "2026-04-01T10:00:00+00:00",
        "status": status,
        "unit": "974589095",
        "message_type": "NPR_ORD",
        "year": 2026,
        "period_from": "2026-01-01",
        "period_to": "2026-03-31",
        "extracted": "2026-04-01",
        "lopenr": lopenr,
        "episodes": 3,
        "patients": 2,
        "reasons": [{"code": "older_than_current", "severity": "info"}],
    }
    return LedgerRecord(**(fields | kw))


def test_the_database_refuses_a_second_accepted_lopenr(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    write_record(home, _record("a" * 16))
    with pytest.raises(LopenrClaimed) as refused:
        write_record(home, _record("b" * 16))
    assert refused.value.owner == "a" * 16
    # a second connection writing the tables directly is refused by the primary key too
    con = duckdb.connect(str(home.root / "state.duckdb"))
    try:
        con.begin()
        con.execute("INSERT INTO ledger (SELECT * REPLACE ('c' || submission_id AS "
                    "submission_id) FROM ledger)")  # fmt: skip
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO lopenr_claims VALUES ('974589095', 'NPR_ORD', 2026, 7, 'c')")
        con.rollback()
    finally:
        con.close()
    assert [r.submission_id for r in load_records(home)] == ["a" * 16]
    # rejected records share lopenrs freely; another year or type is another claim
    write_record(home, _record("d" * 16, status="rejected"))
    write_record(home, _record("e" * 16, year=2025))
    assert len(load_records(home)) == 3


def test_a_refused_claim_leaves_the_rest_of_the_batch_committed(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    write_failed(home, _record("b" * 16, status="failed"))
    refused = write_records(
        home, [_record("a" * 16), _record("b" * 16, lopenr=8), _record("c" * 16)]
    )
    assert [r.record.submission_id for r in refused] == ["c" * 16]
    assert [r.submission_id for r in load_records(home)] == ["a" * 16, "b" * 16]
    assert load_failed(home) == []  # committed for good: the marker went with it


_WRITER = """
import sys
from pathlib import Path
from npr_pipeline.home import Home
from npr_pipeline.store.ledger import LopenrClaimed, write_record
from tests.test_store_ledger import _record
try:
    write_record(Home(root=Path(sys.argv[1])), _record(sys.argv[2]))
    print("accepted")
except LopenrClaimed:
    print("refused")
"""


def test_two_processes_never_both_accept_one_lopenr(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(home.root), sid * 16],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[1],
        )
        for sid in "ab"
    ]
    outcomes = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert outcomes == ["accepted", "refused"]
    assert len(load_records(home)) == 1


def test_intake_without_its_own_check_is_still_held_by_the_claim(
    year,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With intake's in-memory lopenr check switched off (as a writer that bypassed it), the
    table refuses the second file: it fails (retried later), it is never accepted."""
    units, out = year
    unit = next(iter(units.values()))
    original = unit.file("ord", 1)
    twin = encode(decode(original.read_bytes()).replace('versjonUt="', 'versjonUt="x', 1))
    home = _home(tmp_path / "home", out / "registry.csv")
    intake_directory(home, fill_inbox(tmp_path / "a", [original]))
    monkeypatch.setattr(run_module._LedgerState, "lopenr_owner", lambda *a: None)
    second = intake_directory(home, fill_inbox(tmp_path / "b", **{original.name: twin}))
    assert [s.status for s in second.submissions] == [Status.FAILED]
    assert "claimed by" in second.submissions[0].reasons[0].message
    accepted = [r for r in load_records(home) if r.status == Status.ACCEPTED]
    assert [r.file for r in accepted] == [original.name]
    assert [r.submission_id for r in load_failed(home)] == [second.submissions[0].submission_id]
    monkeypatch.undo()  # the next intake rejects it as a reused lopenr, for good
    third = intake_directory(home, fill_inbox(tmp_path / "c", **{original.name: twin}))
    assert [r.code for r in third.submissions[0].reasons] == ["lopenr_reused"]
    assert load_failed(home) == []


def _json(home: Home, record: LedgerRecord, folder: str = "", **raw: object) -> None:
    path = home.ledger / folder / f"{record.submission_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(record) | raw), encoding="utf-8")


def test_a_json_ledger_is_imported_once(tmp_path: Path) -> None:
    home = Home(root=tmp_path / "home").ensure()
    _json(home, _record("a" * 16, received="2026-04-02T00:00:00+00:00"))
    _json(home, _record("b" * 16, received="2026-04-01T00:00:00+00:00"))  # same lopenr, first
    _json(home, _record("c" * 16), lopenr=99999999999999999999, size=-1, period_to="31.03.2026")
    _json(home, _record("d" * 16, status="failed"), "failed")
    _json(home, _record("a" * 16, status="failed"), "failed")  # committed since: not failed
    (home.ledger / "torn.json").write_text("{", encoding="utf-8")
    # before any write: read from the JSON files, nothing written to HOME
    assert [r.submission_id for r in load_records(home)] == ["a" * 16, "b" * 16, "c" * 16]
    assert not (home.root / "state.duckdb").exists()
    assert has_record(home, "c" * 16) and not has_record(home, "d" * 16)
    # the first write imports them, in the same transaction as the marker
    write_record(home, _record("e" * 16, lopenr=9))
    records = {r.submission_id: r for r in load_records(home)}
    assert sorted(records) == [s * 16 for s in "abce"]
    assert (records["c" * 16].lopenr, records["c" * 16].size) == (None, 0)
    assert records["c" * 16].period_to is None
    assert [r.submission_id for r in load_failed(home)] == ["d" * 16]
    with duckdb.connect(str(home.root / "state.duckdb"), read_only=True) as con:
        claims = con.execute(
            "SELECT lopenr, submission_id FROM lopenr_claims ORDER BY 1"
        ).fetchall()
        imported = json.loads(con.execute("SELECT value FROM meta").fetchall()[0][0])
    assert claims == [(7, "b" * 16), (9, "e" * 16)]  # the first received keeps lopenr 7
    assert imported | {"at": None} == {
        "records": 3, "failed": 1, "claims": 1, "unclaimed": 1, "at": None
    }  # fmt: skip
    assert (home.ledger / f"{'a' * 16}.json").exists()  # left in place
    # once only: a JSON file appearing later is not read again
    _json(home, _record("f" * 16, lopenr=10))
    write_record(home, _record("g" * 16, lopenr=11))
    assert not has_record(home, "f" * 16)
    assert known_submissions(home, ["a" * 16, "f" * 16, "g" * 16]) == {"a" * 16, "g" * 16}


@pytest.mark.parametrize(
    "bad",
    [
        {"lopenr": 2**63},
        {"lopenr": -1},
        {"size": "100"},
        {"year": 10_000},
        {"episodes": True},
        {"unit": 974589095},
        {"period_to": "31.03.2026"},
        {"extracted": "2026-02-30"},
        {"checksum": None},
        {"reasons": [{"code": float("nan")}]},
        {"reasons": "lopenr_reused"},
    ],
)
def test_a_badly_typed_record_is_refused_before_anything_is_written(
    tmp_path: Path, bad: dict[str, object]
) -> None:
    home = Home(root=tmp_path / "home").ensure()
    with pytest.raises(LedgerTypeError):
        write_record(home, _record("a" * 16, **bad))
    with pytest.raises(LedgerTypeError):
        write_records(home, [_record("b" * 16)], [_record("c" * 16, status="failed", **bad)])
    assert load_records(home) == [] and load_failed(home) == []


_text = st.one_of(st.none(), st.text(max_size=20))
_records = st.builds(
    LedgerRecord,
    submission_id=st.text(alphabet="0123456789abcdef", min_size=16, max_size=16),
    checksum=st.text(max_size=64),
    file=st.text(max_size=40),
    size=st.integers(0, INT64_MAX),
    received=st.text(max_size=30),
    status=st.sampled_from(["accepted", "rejected", "test"]),
    unit=_text,
    her=_text,
    orgnr=_text,
    message_type=_text,
    version=_text,
    year=st.one_of(st.none(), st.integers(0, 9999)),
    period_from=st.one_of(st.none(), st.dates().map(str)),
    period_to=st.one_of(st.none(), st.dates().map(str)),
    extracted=st.one_of(st.none(), st.dates().map(str)),
    lopenr=st.one_of(st.none(), st.integers(0, INT64_MAX)),
    receiver=_text,
    episodes=st.integers(0, INT64_MAX),
    patients=st.integers(0, INT64_MAX),
    reasons=st.lists(
        st.fixed_dictionaries({"code": st.text(max_size=10), "detail": st.text(max_size=30)}),
        max_size=3,
    ),
)


@settings(
    max_examples=examples(15),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(_records, max_size=12, unique_by=lambda r: r.submission_id))
def test_reading_never_fails_on_any_written_record(
    tmp_path: Path, records: list[LedgerRecord]
) -> None:
    home = Home(root=tmp_path / "home")
    (home.root / "state.duckdb").unlink(missing_ok=True)
    refused = {r.record.submission_id for r in write_records(home, records)}
    kept = sorted((r for r in records if r.submission_id not in refused),
                  key=lambda r: r.submission_id)  # fmt: skip
    assert load_records(home) == kept
    assert all(read_record(home, r.submission_id) == r for r in kept)
    frame = load_ledger(home)
    assert list(frame["submission_id"]) == [r.submission_id for r in kept]
    assert list(frame["lopenr"].astype(object).where(frame["lopenr"].notna(), None)) == [
        r.lopenr for r in kept
    ]
    assert str(frame["size"].dtype) == "int64" and str(frame["lopenr"].dtype) == "Int64"
