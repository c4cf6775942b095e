"""Every value the schema allows is stored with the value it means, or refused with a reason:
never an exception, and never harm to another unit's file.

The reproductions of issue 16 (single-attribute edits of a valid ord file) run through the real
intake beside a clean file of another unit; hypothesis then walks the lexical space of every
XSD type the reader converts, against the real schema, with an oracle built from the parts of
each generated value (pandas does the zone arithmetic, not the code under test).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import asdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from npr_pipeline.home import Home
from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.intake.lexical import LexicalError, xs_date, xs_datetime, xs_integer
from npr_pipeline.intake.reader import read_submission
from npr_pipeline.intake.reasons import Status
from npr_pipeline.intake.tables import ValueRejected, convert, key_columns, part_table
from npr_pipeline.registry import current_registry, import_registry
from npr_pipeline.schemas import common_path
from npr_pipeline.store.lake import INT, KEYS, TABLES, TS, D, S, part_files, part_schema, rows_of
from npr_pipeline.store.ledger import load_ledger, load_records
from tests.intake_files import Unit, decode, encode, fill_inbox, make_year, run_intake
from tests.soak import examples

MUTATED = "zz_mutated.xml"


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> tuple[Unit, Unit, Path]:
    """Two units of a clean January: one sends the mutated file, the other a clean one."""
    out = tmp_path_factory.mktemp("synth-values")
    found = make_year(out, units=3, through=1, episodes=8.0)
    with_all = [u for u in found.values() if _has_all_attributes(u.file("ord", 1))]
    mutated = with_all[0]
    clean = next(u for u in found.values() if u is not mutated)
    return mutated, clean, out / "registry.csv"


def _has_all_attributes(path: Path) -> bool:
    text = decode(path.read_bytes())
    return all(f'{a}="' in text for a in ("innDatoTid", "mottattDato", "tilstNr"))


def _edit(text: str, attribute: str, value: str) -> tuple[str, str]:
    """Set the first ``attribute`` to ``value``; returns the new text and the old value."""
    found = re.search(rf'\b{attribute}="([^"]*)"', text)
    assert found, attribute
    return text[: found.start(1)] + value + text[found.end(1) :], found.group(1)


def _intake_mutated(tmp_path: Path, units, attribute: str, make: callable):
    mutated, clean, registry = units
    text, old = _edit(decode(mutated.file("ord", 1).read_bytes()), attribute, "{}")
    new_value = make(old)
    data = encode(text.replace('="{}"', f'="{new_value}"', 1))
    inbox = fill_inbox(tmp_path / "inbox", [clean.file("ord", 1)], **{MUTATED: data})
    home = Home(root=tmp_path / "home").ensure()
    import_registry(home, registry)
    summary = run_intake(home, inbox, workers=1)
    by_file = {s.file: s for s in summary.submissions}
    good = by_file[clean.file("ord", 1).name]
    assert good.status == Status.ACCEPTED, "a mutated file must never harm another unit's"
    return home, by_file[MUTATED], old


def _stored(home: Home, sub, table: str, column: str) -> object:
    path = part_files(home, table, [sub.submission_id])[sub.submission_id]
    return rows_of(path, sub.submission_id, [column]).column(0)[0].as_py()


STORED = [
    # attribute, edit, table, column, expected value from the original text
    ("tilstNr", lambda v: " 1 ", "diagnoses", "tilstNr", lambda v: 1),
    ("tilstNr", lambda v: "+1", "diagnoses", "tilstNr", lambda v: 1),
    ("tilstNr", lambda v: "0001", "diagnoses", "tilstNr", lambda v: 1),
    ("mottattDato", lambda v: v + "Z", "referrals", "mottattDato", date.fromisoformat),
    ("mottattDato", lambda v: v + "+01:00", "referrals", "mottattDato", date.fromisoformat),
    ("mottattDato", lambda v: f"\t{v} ", "referrals", "mottattDato", date.fromisoformat),
    ("innDatoTid", lambda v: v + "+01:00", "episodes", "innDatoTid", datetime.fromisoformat),
    ("innDatoTid", lambda v: v + ".5", "episodes", "innDatoTid", datetime.fromisoformat),
    ("innDatoTid", lambda v: v + ".123456789", "episodes", "innDatoTid", datetime.fromisoformat),
    # winter: UTC is one hour behind Oslo
    (
        "innDatoTid",
        lambda v: v + "Z",
        "episodes",
        "innDatoTid",
        lambda v: datetime.fromisoformat(v) + timedelta(hours=1),
    ),
    (
        "innDatoTid",
        lambda v: v[:10] + "T24:00:00",
        "episodes",
        "innDatoTid",
        lambda v: datetime.fromisoformat(v[:10]) + timedelta(days=1),
    ),
]


@pytest.mark.parametrize(
    ("attribute", "edit", "table", "column", "expected"),
    STORED,
    ids=[f"{a}-{i}" for i, (a, *_) in enumerate(STORED)],
)
def test_schema_valid_spelling_is_stored_as_its_value(
    units, tmp_path: Path, attribute, edit, table, column, expected
) -> None:
    home, sub, old = _intake_mutated(tmp_path, units, attribute, edit)
    assert sub.status == Status.ACCEPTED, [r.message for r in sub.reasons]
    assert _stored(home, sub, table, column) == expected(old)


REFUSED = [
    ("tilstNr", lambda v: "99999999999"),
    ("mottattDato", lambda v: "1" + v),
    ("mottattDato", lambda v: "-" + v),
    ("innDatoTid", lambda v: "1" + v),
    ("lopenr", lambda v: "99999999999999999999"),
    ("fodselsar", lambda v: "&#1634;&#1632;&#1634;&#1638;"),  # Arabic-Indic digits: XSD's \d
]


@pytest.mark.parametrize(
    ("attribute", "edit"), REFUSED, ids=[f"{a}-{i}" for i, (a, _) in enumerate(REFUSED)]
)
def test_out_of_range_value_is_refused_by_the_schema(
    units, tmp_path: Path, attribute, edit
) -> None:
    home, sub, _ = _intake_mutated(tmp_path, units, attribute, edit)
    assert sub.status == Status.REJECTED
    assert {r.code for r in sub.reasons if r.severity == "error"} == {"schema_error"}
    assert len(load_ledger(home)) == 2  # the ledger still loads with every record typed


def test_lopenr_far_above_current_is_rejected_with_its_own_reason(units, tmp_path: Path) -> None:
    """An absurd but valid lopenr would otherwise stay the unit's current file all year."""
    mutated, _, registry = units
    original = decode(mutated.file("ord", 1).read_bytes())
    jumped, _ = _edit(original, "lopenr", "1002")
    next_ok, _ = _edit(original, "lopenr", "1001")
    home = Home(root=tmp_path / "home").ensure()
    import_registry(home, registry)
    run_intake(home, fill_inbox(tmp_path / "a", [mutated.file("ord", 1)]), workers=1)
    summary = run_intake(
        home, fill_inbox(tmp_path / "b", a_jump=encode(jumped), b_next=encode(next_ok)), workers=1
    )
    by_file = {s.file: s for s in summary.submissions}
    assert [r.code for r in by_file["a_jump"].reasons] == ["lopenr_jump"]
    assert by_file["b_next"].status == Status.ACCEPTED  # 1001 is within 1,000 of 1


# -- the lexical space, property-based --------------------------------------------------------
TYPES_XSD = """<schema xmlns="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:values"
    xmlns:nprx="http://www.npr.no/xmlstds/58_0_1">
  <import namespace="http://www.npr.no/xmlstds/58_0_1" schemaLocation="{npr}"/>
  <element name="v"><complexType>
    <attribute name="dato" type="nprx:dato"/>
    <attribute name="datoTid" type="nprx:datoTid"/>
    <attribute name="nummer" type="nprx:nummer"/>
    <attribute name="lopenr" type="nprx:lopenr"/>
    <attribute name="aarstall" type="nprx:aarstall"/>
  </complexType></element>
</schema>"""


@pytest.fixture(scope="module")
def types_schema() -> etree.XMLSchema:
    npr = common_path("58.0.1")
    return etree.XMLSchema(etree.fromstring(TYPES_XSD.format(npr=npr.as_uri()).encode()))


def _valid(xsd: etree.XMLSchema, attribute: str, value: str) -> bool:
    element = etree.Element("{urn:values}v")
    element.set(attribute, value)
    return xsd.validate(element)


WS = st.sampled_from(["", " ", "\t", "\n ", "  "])
SIGN = st.sampled_from(["", "-", "+"])
ZONES = st.one_of(
    st.just(""),
    st.just("Z"),
    st.tuples(st.sampled_from("+-"), st.integers(0, 15), st.integers(0, 60)).map(
        lambda z: f"{z[0]}{z[1]:02d}:{z[2]:02d}"
    ),
)
YEARS = st.one_of(st.integers(1, 9999), st.integers(0, 120_000))


# The parts of a date (with a zone and surrounding whitespace), invalid combinations included:
# the schema decides which are valid.
DAY_PARTS = {
    "sign": SIGN,
    "year": YEARS,
    "month": st.integers(0, 13),
    "day": st.integers(0, 32),
    "zone": ZONES,
    "before": WS,
    "after": WS,
}


def property_test(n: int):
    """Hypothesis settings of every property test here: ``n`` examples, no deadline."""
    return settings(
        max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )


def _year(sign: str, year: int) -> str:
    return f"{'-' if sign == '-' else ''}{year:04d}"


def _expected_oslo(
    year: int, month: int, day: int, hour: int, minute: int, second: int, frac: str, zone: str
) -> datetime | None:
    """The value a valid dateTime names, as Oslo local time; None if no datetime holds it.

    Built from the generated parts with zone-aware datetimes (fixed offset, then
    ``astimezone``), not with the reader's own arithmetic.
    """
    end_of_day = hour == 24
    if end_of_day and (minute, second, int(frac or 0)) != (0, 0, 0):
        return None  # 24:MM:SS is not a time
    try:
        moment = datetime(year, month, day, 0 if end_of_day else hour, minute, second)
        moment += timedelta(days=1) if end_of_day else timedelta(0)
        if not zone:
            return moment
        offset = (
            timedelta(0)
            if zone == "Z"
            else (-1 if zone[0] == "-" else 1)
            * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
        )
        zoned = moment.replace(tzinfo=timezone(offset))
        return zoned.astimezone(ZoneInfo("Europe/Oslo")).replace(tzinfo=None)
    except (ValueError, OverflowError):
        return None


def _arrow(values: list[str], dtype: pa.DataType, column: str) -> object:
    """Through the lake sink's conversion, as intake stores a column."""
    return convert(pa.array(values, pa.string()), dtype, "t", column)[0].as_py()


@pytest.mark.soak
@property_test(examples(300))
@given(
    **DAY_PARTS,
    hour=st.integers(0, 25),
    minute=st.integers(0, 60),
    second=st.integers(0, 60),
    fraction=st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=12)),
)
def test_every_valid_datetime_is_stored_as_its_oslo_time(
    types_schema, sign, year, month, day, hour, minute, second, fraction, zone, before, after
) -> None:
    frac = f".{fraction}" if fraction else ""
    text = (
        f"{before}{_year(sign, year)}-{month:02d}-{day:02d}"
        f"T{hour:02d}:{minute:02d}:{second:02d}{frac}{zone}{after}"
    )
    assume(_valid(types_schema, "datoTid", text))
    expected = _expected_oslo(year, month, day, hour, minute, second, fraction, zone)
    if expected is None:  # valid lexically, but no storable instant (the ends of time)
        with pytest.raises(ValueRejected):
            _arrow([text], pa.timestamp("s"), "datoTid")
        return
    assert _arrow([text], pa.timestamp("s"), "datoTid") == expected, text
    assert xs_datetime(text) == expected


# Spellings of each converted type: the plain ones Arrow's cast reads and others only the
# lexical rules read (a sign, whitespace, a zone, fractional seconds, 24:00:00).
_DAYS = st.dates(date(1900, 1, 1), date(2100, 12, 30))
_SPELLED = {
    INT: st.integers(-(2**31), 2**31 - 1).flatmap(
        lambda n: st.sampled_from([str(n), f"{n:+d}", f" {n}\n"])
    ),
    D: st.tuples(_DAYS, st.sampled_from(["", "Z", "+01:00", " "])).map(
        lambda d: d[0].isoformat() + d[1]
    ),
    TS: st.tuples(
        _DAYS,
        st.sampled_from(
            ["T08:30:05", "T23:59:59.999", "T24:00:00", "T00:00:00Z", "T02:30:00+02:00"]
        ),
    ).map(lambda d: d[0].isoformat() + d[1]),
}
_READ = {INT: xs_integer, D: xs_date, TS: xs_datetime}
_POSITIONS = ("line", "seq")  # the native pass hands these over as int32, every other as text


@st.composite
def _raw_table(draw: st.DrawFn) -> tuple[str, list[pa.Array], int]:
    """A table's raw columns as the native pass hands them over, values of any spelling; and
    how many rows longer its submission's longest table is."""
    table = draw(st.sampled_from(sorted(TABLES)))
    rows = draw(st.integers(0, 4))
    raw = []
    for name, dtype in TABLES[table]:
        if name in _POSITIONS:
            raw.append(
                pa.array(draw(st.lists(st.integers(1, 9999), min_size=rows, max_size=rows)), INT)
            )
            continue
        values = _SPELLED.get(dtype, st.text(max_size=3))
        column = st.lists(st.none() | values, min_size=rows, max_size=rows)
        raw.append(pa.array(draw(column), pa.string()))
    return table, raw, draw(st.integers(0, 3))


@pytest.mark.soak
@property_test(examples(300))
@given(_raw_table())
def test_a_part_holds_every_value_read_by_its_lexical_rules(found) -> None:
    """The rows of a part as written: the keys, then each raw column as its value by the XSD
    lexical rules in the part file's type (timestamps in microseconds), whether Arrow's cast
    or the Python reader read it, and text and positions exactly as handed over."""
    table, raw, longer = found
    keys = key_columns(("sid", "123", 2026), len(raw[0]) + longer)  # another table's, longer
    frame = part_table(table, keys, raw)
    assert frame.schema == part_schema(table)
    assert frame.select([n for n, _ in KEYS]).to_pylist() == [
        {"submission_id": "sid", "unit": "123", "year": 2026}
    ] * len(raw[0])
    for (name, dtype), column in zip(TABLES[table], raw, strict=True):
        stored = frame.column(name).combine_chunks()
        if dtype == S or name in _POSITIONS:
            assert stored.equals(column), name
            continue
        read = _READ[dtype]
        expected = [None if v is None else read(v) for v in column.to_pylist()]
        assert stored.to_pylist() == expected, (name, column)


@pytest.mark.soak
@property_test(examples(300))
@given(**DAY_PARTS)
def test_every_valid_date_is_stored_as_its_day(
    types_schema, sign, year, month, day, zone, before, after
) -> None:
    text = f"{before}{_year(sign, year)}-{month:02d}-{day:02d}{zone}{after}"
    assume(_valid(types_schema, "dato", text))
    assert _arrow([text], pa.date32(), "dato") == date(year, month, day)
    assert xs_date(text) == date(year, month, day)


@pytest.mark.soak
@property_test(examples(300))
@given(
    attribute=st.sampled_from(["nummer", "lopenr", "aarstall"]),
    sign=SIGN,
    digits=st.one_of(st.integers(0, 10**6), st.integers(0, 10**25)).map(str),
    zeros=st.text("0", max_size=3),
    before=WS,
    after=WS,
)
def test_every_valid_integer_is_stored_as_its_number(
    types_schema, attribute, sign, digits, zeros, before, after
) -> None:
    text = f"{before}{sign}{zeros}{digits}{after}"
    assume(_valid(types_schema, attribute, text))
    expected = int(f"{sign}{digits}")
    assert _arrow([text], pa.int32(), attribute) == expected
    assert xs_integer(text) == expected


@pytest.mark.parametrize(
    "text", ["", "1.0", "1e3", "0x10", "٣", "2026-02-30", "2026-01-01T25:00:00", "abc"]
)
def test_what_no_lexical_rule_reads_is_a_lexical_error(text: str) -> None:
    for read in (xs_integer, xs_date, xs_datetime):
        with pytest.raises(LexicalError):
            read(text)


def test_ledger_written_before_typing_still_loads(tmp_path: Path, units) -> None:
    """A HOME poisoned by an untyped record (lopenr beyond int64) loads, with it unknown."""
    mutated, clean, registry = units
    home = Home(root=tmp_path / "home").ensure()
    import_registry(home, registry)
    run_intake(home, fill_inbox(tmp_path / "in", [clean.file("ord", 1)]), workers=1)
    # a HOME from before the ledger table: its record as a JSON file, lopenr beyond int64
    (doc,) = [asdict(r) for r in load_records(home)]
    doc["lopenr"] = 99999999999999999999
    (home.root / "state.duckdb").unlink()
    (home.ledger / f"{doc['submission_id']}.json").write_text(json.dumps(doc), encoding="utf-8")
    assert load_records(home)[0].lopenr is None  # read from the JSON file
    assert load_ledger(home)["lopenr"].isna().all()
    run_intake(home, fill_inbox(tmp_path / "in2", [mutated.file("ord", 1)]), workers=1)
    by_id = {r.submission_id: r for r in load_records(home)}
    assert len(by_id) == 2 and by_id[doc["submission_id"]].lopenr is None  # imported as NULL


@pytest.mark.soak
@property_test(examples(40))
@given(
    attribute=st.sampled_from(["innDatoTid", "mottattDato", "tilstNr", "fodselsar"]),
    value=st.one_of(
        st.from_regex(
            r"[ \t]?-?[0-9]{4,5}-[01][0-9]-[0-3][0-9](T2[0-4]:00:00(\.[0-9]{1,9})?)?"
            r"(Z|[+-]1[0-5]:[0-5][0-9])?[ \t]?",
            fullmatch=True,
        ),
        st.from_regex(r"[ \t]?[+-]?0*[0-9]{1,12}[ \t]?", fullmatch=True),
    ),
)
def test_any_value_in_a_real_file_is_stored_or_refused_never_raised(
    units, tmp_path: Path, attribute: str, value: str
) -> None:
    """The whole reader on a real file with one value replaced: a result, never an exception."""
    mutated, _, registry = units
    text, _ = _edit(decode(mutated.file("ord", 1).read_bytes()), attribute, value)
    path = tmp_path / "file.xml"
    path.write_bytes(encode(text))
    home = Home(root=tmp_path / "home").ensure()
    import_registry(home, registry)
    index = RegistryIndex(current_registry(home))
    staging = tmp_path / "staging"
    read = read_submission(path, index, staging, "sid", date(2026, 2, 10), 10**9)
    codes = {r.code for r in read.errors}
    assert codes <= {"schema_error", "value_out_of_range", "bad_period"}, codes
    assert bool(read.staged) == (not codes)
    shutil.rmtree(staging, ignore_errors=True)
