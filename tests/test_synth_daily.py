"""``npr synth --route daily``: the same truth as daily event files that net out to it (issue 13).

Every file is read by the real reader (lxml, XSD validation) and folded by a small reference fold
written here, independently of the production fold: per key, in ``endretTidspunkt`` order (then
``lopenr``, then line), N creates (not over a live record), M replaces, T overwrites the
attributes it carries and adds or replaces children by child key, C cancels. The folded state
through a month must be exactly the truth (:mod:`npr_pipeline.synth.truth`) in the monthly lake
tables' columns, and each month's closing must carry the totals counted from that state.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pytest

from npr_pipeline.intake.typed_reader import read_typed
from npr_pipeline.messages import get
from npr_pipeline.periods import month_end
from npr_pipeline.synth.run import SynthOptions, expected_tables, run_synth
from npr_pipeline.synth.truth import TABLE_NAMES, truth_schema

SEED, THROUGH = 9, 2
# daily table -> (monthly table, renamed columns); children take pasientNr from their parent
STATE = {
    "daily_contacts": ("episodes", {"kontaktID": "episodeID"}),
    "daily_contact_diagnoses": ("diagnoses", {"kontaktID": "episodeID"}),
    "daily_contact_procedures": ("procedures", {"kontaktID": "episodeID", "prosedyreNr": "seq"}),
    "daily_referrals": ("referrals", {}),
    "daily_postponements": ("postponements", {}),
    "daily_patients": ("patients", {}),
    "daily_departments": ("departments", {}),
    "daily_identities": ("idents", {}),
}
EVENT = ("hendelsesstatus", "endretTidspunkt")


@pytest.fixture(scope="module")
def daily_year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth-daily")
    run_synth(
        SynthOptions(
            out=out, year=2026, through=THROUGH, units=3, seed=SEED, episodes_per_unit_month=8,
            route="daily", private_units=2,
        )
    )  # fmt: skip
    return out


@dataclass
class Received:
    """One file as read: its unit, delivery date, lopenr and the rows of each daily table."""

    path: Path
    unit: str
    delivered: date
    kind: str
    lopenr: int
    tables: dict = field(default_factory=dict)


def _received(inbox: Path) -> list[Received]:
    found = []
    for path in sorted(inbox.iterdir()):
        unit, stamp, kind, _ = path.stem.split("_")
        result = read_typed(path, {"unit": unit, "submission_id": path.name})
        assert result.ok, (path.name, result.errors[:3])
        tables = {name: table.to_pylist() for name, table in result.tables.items()}
        delivered = datetime.strptime(stamp, "%Y%m%dT%H%M%S").date()
        found.append(Received(path, unit, delivered, kind, int(result.attrs["lopenr"]), tables))
    return found


@pytest.fixture(scope="module")
def received(daily_year: Path) -> list[Received]:
    return _received(daily_year / "inbox")


# -- the reference fold --------------------------------------------------------------------------


def _fold(files: list[Received]) -> dict[str, list[dict]]:
    """The state the files net out to, as rows of the monthly lake tables."""
    events = defaultdict(list)  # (unit, kind, key) -> [(order, attrs, {child table: rows})]
    for f in files:
        if f.kind == "avslutning":  # closings are checked, not folded into the state
            continue
        mtype = get(f.kind, "58.0.1")
        root, *children = mtype.tables
        for row in f.tables[root.name]:
            key = tuple(row[k] for k in root.key)
            found = {
                spec.name: [
                    c for c in f.tables[spec.name]
                    if tuple(c[k] for k in root.key) == key
                    and all(c[e] == row[e] for e in EVENT)
                ]
                for spec in children
            }  # fmt: skip
            order = (row["endretTidspunkt"], f.lopenr, row["line"])
            events[(f.unit, f.kind, key)].append((order, row, found))
    state: dict[str, list[dict]] = {t: [] for t in TABLE_NAMES}
    for (unit, kind, _), history in events.items():
        record = _apply(sorted(history, key=lambda e: e[0]), get(kind, "58.0.1"))
        if record is not None:
            _to_state(state, unit, *record)
    return state


def _apply(history: list, mtype) -> tuple[str, dict, dict] | None:
    root = mtype.tables[0]
    children_keys = {spec.name: spec.key for spec in mtype.tables[1:]}
    live: tuple[dict, dict] | None = None
    for _, row, found in history:
        status = row["hendelsesstatus"]
        by_key = {
            name: {tuple(c[k] for k in children_keys[name]): c for c in rows}
            for name, rows in found.items()
        }
        if (status == "N" and live is None) or (status == "M" and live is not None):
            live = (dict(row), by_key)  # an N never overwrites a live record
        elif status == "T" and live is not None:
            live[0].update({k: v for k, v in row.items() if v is not None})
            for name, rows in by_key.items():
                live[1][name].update(rows)
        elif status == "C":
            live = None
    if live is None:
        return None
    return root.name, live[0], {n: list(rows.values()) for n, rows in live[1].items()}


def _to_state(state: dict, unit: str, table: str, row: dict, children: dict) -> None:
    def shaped(daily_table: str, values: dict, extra: dict) -> None:
        target, rename = STATE[daily_table]
        names = truth_schema(target).names
        values = {rename.get(k, k): v for k, v in values.items()} | extra
        state[target].append({n: values.get(n) for n in names})

    base = {"unit": unit, "year": 2026}
    shaped(table, row, base)
    for name, rows in children.items():
        for child in rows:
            shaped(name, child, base | {"pasientNr": row.get("pasientNr")})


def _sorted(rows: list[dict]) -> list[str]:
    """Rows as comparable text, in order (None sorts with the strings)."""
    return sorted(repr(sorted(r.items())) for r in rows)


@pytest.mark.parametrize("month", [1, THROUGH])
def test_files_through_a_month_net_out_to_the_truth(
    daily_year: Path, received: list[Received], month: int
) -> None:
    options = SynthOptions(
        out=daily_year, year=2026, through=THROUGH, units=3, seed=SEED,
        episodes_per_unit_month=8, route="daily", private_units=2,
    )  # fmt: skip
    cutoff = month_end(2026, month)
    state = _fold([f for f in received if f.delivered <= cutoff])
    truth = {n: table.to_pylist() for n, table in expected_tables(options, month).items()}
    assert len(truth["episodes"]) > 50 * month
    for table in TABLE_NAMES:
        assert _sorted(state[table]) == _sorted(truth[table]), table


def test_each_closing_matches_the_state_when_it_arrives(received: list[Received]) -> None:
    """Files in name order; at each closing the folded state so far has its totals."""
    closings = [i for i, f in enumerate(received) if f.kind == "avslutning"]
    assert len(closings) == 5 * THROUGH
    for i in closings:
        closing = received[i]
        (head,) = closing.tables["daily_closings"]
        first, last = head["fraDatoPeriode"], head["tilDatoPeriode"]
        state = _fold([f for f in received[:i] if f.unit == closing.unit])
        contacts = [e for e in state["episodes"] if first <= e["innDatoTid"].date() <= last]
        waiting = [
            r
            for r in state["referrals"]
            if r["mottattDato"] <= last
            and min(d for d in (r["tjenestestart"], r["avviklingsdato"], last) if d) >= first
        ]
        patients = {r["pasientNr"] for r in contacts + waiting}
        idents = patients & {r["pid"] for r in state["idents"]}
        totals = {t["postart"]: t["antall"] for t in closing.tables["daily_control_totals"]}
        assert totals == {"1": len(contacts), "2": len(waiting), "3": len(idents)}, closing.path


# -- what the files look like -------------------------------------------------------------------


def test_every_status_and_every_kind_occurs(received: list[Received]) -> None:
    statuses = Counter()
    for f in received:
        for row in f.tables[get(f.kind, "58.0.1").tables[0].name]:
            statuses[(f.kind, row["hendelsesstatus"])] += 1
    assert {k for k, _ in statuses} == {"enhet", "pasient", "ident", "henvisning", "kontakt",
                                        "avslutning"}  # fmt: skip
    for status in "NMTC":
        assert statuses[("kontakt", status)] > 0, status
    assert statuses[("henvisning", "T")] > statuses[("pasient", "M")] > 0


def _content(f: Received) -> str:
    """The events a file carries, whatever its name (the reader's context column)."""
    rows = {
        name: [{k: v for k, v in row.items() if k != "submission_id"} for row in table]
        for name, table in f.tables.items()
    }
    return repr(sorted(rows.items()))


def test_delivered_out_of_order_and_duplicated(received: list[Received]) -> None:
    by_stream = defaultdict(list)
    for f in received:  # name order = delivery order
        by_stream[(f.unit, f.kind)].append(f)
    out_of_order = resent = 0
    for files in by_stream.values():
        numbers = [f.lopenr for f in files]
        out_of_order += sum(a > b for a, b in zip(numbers, numbers[1:], strict=False))
        # lopenr rises per unit, kind and year: 1..n, each once but for byte duplicates
        assert sorted(set(numbers)) == list(range(1, len(set(numbers)) + 1))
        contents = Counter(_content(f) for f in files)
        resent += sum(n - 1 for n in contents.values())
    digests = Counter(hashlib.sha256(f.path.read_bytes()).hexdigest() for f in received)
    byte_duplicates = sum(n - 1 for n in digests.values())
    assert out_of_order > 0 and byte_duplicates > 0 and resent > byte_duplicates


def test_same_seed_same_files(daily_year: Path, tmp_path: Path) -> None:
    run_synth(
        SynthOptions(
            out=tmp_path, year=2026, through=THROUGH, units=3, seed=SEED,
            episodes_per_unit_month=8, route="daily", private_units=2,
        )
    )  # fmt: skip
    for path in (daily_year / "inbox").iterdir():
        assert (tmp_path / "inbox" / path.name).read_bytes() == path.read_bytes()
    assert len(list((tmp_path / "inbox").iterdir())) == len(list((daily_year / "inbox").iterdir()))
