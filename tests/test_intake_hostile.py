"""Hostile and broken input through the real intake: each case gets its own clear reason code,
never hangs, reads no local file and opens no connection, and harms nothing else.

Every case is sent together with a clean file of another unit; that file must still be
accepted with its lake tables in place, while the hostile one leaves no table anywhere, only
its ledger record and its feedback report. Files are real synthetic submissions mutated in one
named way (see ``tests/intake_files.py``).
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from npr_pipeline import reference
from npr_pipeline.envelope import PRODUCTION_HER, TEST_ORGNR, VALIDATION_HER
from npr_pipeline.home import Home
from npr_pipeline.intake.daily import daily_header, untyped_by_probe
from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.intake.reader import ReadResult, read_submission
from npr_pipeline.intake.reasons import CODES, Status
from npr_pipeline.intake.run import SubmissionResult
from npr_pipeline.registry import import_registry, read_registry_csv
from npr_pipeline.store.lake import part_files
from npr_pipeline.store.ledger import current_submissions, load_ledger, load_records, read_record
from tests.intake_files import (
    MSGHEAD_XMLNS,
    Unit,
    declared,
    decode,
    fill_inbox,
    line_of,
    make_year,
    mutate,
    replace_once,
    run_intake,
    stored_tables,
    tables_of,
    with_doctype,
    with_sender,
)

HOSTILE = "zz_hostile.xml"
SECRET = "npr-secret-marker-4f1c9a"


@dataclass(frozen=True)
class Year:
    """The clean synthetic year the cases are cut from.

    ``small`` is the unit hostile files usually pretend to be (it has at least one episode in
    February); ``big`` sends the clean file that must survive beside them.
    """

    big: Unit
    small: Unit
    registry: Path


@dataclass(frozen=True)
class Context:
    """What a case builder may point at: the year, a local secret file, a listening port."""

    year: Year
    secret: Path
    port: int


@dataclass(frozen=True)
class Case:
    """One hostile file, the status and reason code it must get, and the size limit it is
    received under (none: the settings')."""

    name: str
    build: Callable[[Context], bytes]
    code: str
    status: str = Status.REJECTED
    max_bytes: int | None = None


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> Year:
    """Three units, January-February 2026, a handful of episodes each."""
    out = tmp_path_factory.mktemp("synth-hostile")
    units = make_year(out, units=3, through=2)
    big = max(units.values(), key=lambda u: u.file("ord", 1).stat().st_size)
    small = next(
        u for u in units.values() if u is not big and b"<Episode " in u.file("ord", 2).read_bytes()
    )
    return Year(big=big, small=small, registry=out / "registry.csv")


@contextmanager
def _listening() -> Iterator[socket.socket]:
    """A local TCP port that records whether anything tried to fetch from it."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with _listening() as server:
        yield server


def _connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


# -- the cases ------------------------------------------------------------------------------
def _small_ord(ctx: Context) -> Path:
    return ctx.year.small.file("ord", 2)


def _text(path: Path) -> str:
    return decode(path.read_bytes())


def _latin1_under_utf8_header(ctx: Context) -> bytes:
    text = declared(_text(_small_ord(ctx)), "UTF-8")
    return replace_once(text, 'navn="Teknisk kontakt ', 'navn="Blåbærøy ').encode("latin-1")


def _latin1_under_utf8_deep(ctx: Context) -> bytes:
    """The bad bytes come after 100 kB, long after the prolog check has finished."""
    text = declared(_text(_small_ord(ctx)), "UTF-8")
    padding = "<!-- " + "x" * 100_000 + " -->\n<!-- Blåbærøy -->\n"
    return replace_once(text, "</Institusjon>", padding + "</Institusjon>").encode("latin-1")


def _utf16(ctx: Context, codec: str) -> bytes:
    return declared(_text(_small_ord(ctx)), "UTF-16").encode(codec)


def _billion_laughs(ctx: Context) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    ]
    doctype = f"<!DOCTYPE MsgHead [{''.join(entities)}]>"
    return with_doctype(_small_ord(ctx), doctype, ("Teknisk kontakt ", "&lol9; "))


def _xxe_file(ctx: Context) -> bytes:
    doctype = f'<!DOCTYPE MsgHead [<!ENTITY xxe SYSTEM "file://{ctx.secret}">]>'
    return with_doctype(_small_ord(ctx), doctype, ("Teknisk kontakt ", "&xxe; "))


def _xxe_passwd(ctx: Context) -> bytes:
    doctype = '<!DOCTYPE MsgHead [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    return with_doctype(_small_ord(ctx), doctype, ("Teknisk kontakt ", "&xxe; "))


def _xxe_network(ctx: Context) -> bytes:
    doctype = f'<!DOCTYPE MsgHead [<!ENTITY xxe SYSTEM "http://127.0.0.1:{ctx.port}/x">]>'
    return with_doctype(_small_ord(ctx), doctype, ("Teknisk kontakt ", "&xxe; "))


def _xxe_parameter(ctx: Context) -> bytes:
    doctype = (
        f'<!DOCTYPE MsgHead [<!ENTITY % ext SYSTEM "http://127.0.0.1:{ctx.port}/p.dtd"> %ext;]>'
    )
    return with_doctype(_small_ord(ctx), doctype)


def _external_dtd(ctx: Context) -> bytes:
    doctype = f'<!DOCTYPE MsgHead SYSTEM "http://127.0.0.1:{ctx.port}/msghead.dtd">'
    return with_doctype(_small_ord(ctx), doctype)


def _inactive_unit(ended: bool) -> pd.Series:
    """A reference unit closed during 2025, or one opening after the data period."""
    units = reference.units()
    reports = units["message_types"].str.contains("NPR_ORD")
    if ended:
        pick = units[reports & (units["valid_to"].dt.year == 2025)]
    else:
        pick = units[reports & (units["valid_from"] > pd.Timestamp("2026-03-01"))]
    assert not pick.empty
    return pick.sort_values("reshID").iloc[0]


def _as_unit(ctx: Context, row: pd.Series) -> bytes:
    return with_sender(_small_ord(ctx), str(row["herID"]), str(row["orgnr"]), str(row["reshID"]))


def _unknown_sender(ctx: Context) -> bytes:
    units = reference.units()
    her, orgnr, resh = "1", "999999995", "1"
    assert her not in set(units["herID"]) and resh not in set(units["reshID"])
    assert orgnr not in set(units["orgnr"])
    return with_sender(_small_ord(ctx), her, orgnr, resh)


def _sender_mismatch(ctx: Context) -> bytes:
    small, big = ctx.year.small, ctx.year.big
    return with_sender(_small_ord(ctx), small.her, small.orgnr, big.resh)


def _wrong_version(ctx: Context) -> bytes:
    return mutate(
        _small_ord(ctx), ("58_0_1_ord", "57_0_1_ord"), ('versjon="58.0.1"', 'versjon="57.0.1"')
    )


def _padded(ctx: Context) -> bytes:
    """Well-formed and otherwise acceptable, just larger than the limit (300 kB)."""
    return _small_ord(ctx).read_bytes() + b" " * 400_000


def _deeply_nested(ctx: Context) -> bytes:
    nest = "<a>" * 5000 + "</a>" * 5000
    return mutate(_small_ord(ctx), ("</Institusjon>", nest + "</Institusjon>"))


CASES = [
    Case("empty_file", lambda ctx: b"", "empty_file"),
    Case("not_xml_csv", lambda ctx: b"reshID;orgnr\n4001031;974633574\n", "not_xml"),
    Case("not_xml_binary", lambda ctx: b"%PDF-1.7\n\x00\x01\x02\xff\xfe" * 50, "not_xml"),
    Case("not_xml_deeply_nested", _deeply_nested, "not_xml"),
    Case(
        "truncated_small",
        lambda ctx: (b := _small_ord(ctx).read_bytes())[: len(b) * 3 // 5],
        "truncated",
    ),
    Case(
        "truncated_large",
        lambda ctx: (b := ctx.year.big.file("ord", 2).read_bytes())[: len(b) * 3 // 5],
        "truncated",
    ),
    Case("latin1_declared_utf8_header", _latin1_under_utf8_header, "encoding_error"),
    Case("latin1_declared_utf8_deep", _latin1_under_utf8_deep, "encoding_error"),
    # the two libxml2s read it by different encodings: the native pass's stored mojibake
    Case(
        "utf8_mark_before_latin1_declaration",
        lambda ctx: b"\xef\xbb\xbf" + declared(_text(_small_ord(ctx)), "ISO-8859-1").encode(),
        "encoding_error",
    ),
    Case("utf16_with_bom", lambda ctx: _utf16(ctx, "utf-16"), "unsupported_encoding"),
    Case("utf16le_without_bom", lambda ctx: _utf16(ctx, "utf-16-le"), "unsupported_encoding"),
    Case(
        "ebcdic_declared",
        lambda ctx: declared(_text(_small_ord(ctx)), "EBCDIC-US").encode("utf-8"),
        "unsupported_encoding",
    ),
    Case(
        "ebcdic_bytes",
        lambda ctx: declared(_text(_small_ord(ctx)), "EBCDIC-US").encode("cp037"),
        "unsupported_encoding",
    ),
    Case("billion_laughs", _billion_laughs, "doctype_forbidden"),
    Case("external_entity_local_file", _xxe_file, "doctype_forbidden"),
    Case("external_entity_etc_passwd", _xxe_passwd, "doctype_forbidden"),
    Case("external_entity_network", _xxe_network, "doctype_forbidden"),
    Case("external_parameter_entity", _xxe_parameter, "doctype_forbidden"),
    Case("external_dtd", _external_dtd, "doctype_forbidden"),
    Case(
        "undeclared_entity_reference",
        lambda ctx: mutate(_small_ord(ctx), ("Teknisk kontakt ", "&xxe; ")),
        "entity_forbidden",
    ),
    # well-formedness, not the bytes: libxml2 says code 9 as for bytes that are not UTF-8
    Case(
        "character_reference_to_nul",
        lambda ctx: mutate(_small_ord(ctx), ("Teknisk kontakt ", "&#0; ")),
        "not_xml",
    ),
    Case(
        "character_reference_out_of_bounds",
        lambda ctx: mutate(_small_ord(ctx), ("Teknisk kontakt ", "&#99999999999; ")),
        "not_xml",
    ),
    Case(
        "unknown_root",
        lambda ctx: b'<?xml version="1.0" encoding="UTF-8"?>\n<Foo xmlns="urn:x"><Bar/></Foo>\n',
        "not_msghead",
    ),
    Case(
        "msghead_wrong_namespace",
        lambda ctx: mutate(
            _small_ord(ctx),
            (MSGHEAD_XMLNS, 'xmlns="http://www.kith.no/xmlstds/msghead/2004-11-21"'),
        ),
        "not_msghead",
    ),
    Case(
        "payload_without_envelope",
        lambda ctx: (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            + _text(_small_ord(ctx)).split("<Content>\n", 1)[1].split("\n</Content>", 1)[0]
        ).encode("utf-8"),
        "not_msghead",
    ),
    Case(
        "unknown_payload_namespace",
        lambda ctx: mutate(
            _small_ord(ctx), ("http://www.npr.no/xmlstds/58_0_1_ord", "urn:example:not-npr")
        ),
        "unknown_payload",
    ),
    # libxml2 only warns about a namespace name that is not a URI; lxml refuses to build it
    Case(
        "payload_namespace_not_a_uri",
        lambda ctx: mutate(
            _small_ord(ctx), ('xmlns="http://www.npr.no/', 'xmlns=" http://www.npr.no/')
        ),
        "unknown_payload",
    ),
    Case(
        "envelope_namespace_not_a_uri",
        lambda ctx: mutate(_small_ord(ctx), ("<MsgType V", '<MsgType xmlns=" urn:x" V')),
        "not_xml",
    ),
    Case(
        "payload_attribute_namespace_not_a_uri",
        lambda ctx: mutate(_small_ord(ctx), ("<Melding ", '<Melding xmlns:x=" urn:x" x:y="1" ')),
        "not_xml",
    ),
    Case(
        "unknown_payload_version",
        lambda ctx: mutate(_small_ord(ctx), ("58_0_1_ord", "56_0_1_ord")),
        "unknown_payload",
    ),
    Case(
        "payload_mismatch",
        lambda ctx: mutate(ctx.year.small.file("ide", 2), ('V="NPR_IDE"', 'V="NPR_ORD"')),
        "payload_mismatch",
    ),
    # the envelope by MsgHead v1.2's schema: the first Type used to count
    Case(
        "msghead_two_types",
        lambda ctx: mutate(_small_ord(ctx), ("<MIGversion>", '<Type V="NPR_ORD"/><MIGversion>')),
        "header_schema_error",
    ),
    Case("wrong_version", _wrong_version, "wrong_version"),
    Case("unknown_sender", _unknown_sender, "unknown_sender"),
    Case(
        "inactive_sender_closed", lambda ctx: _as_unit(ctx, _inactive_unit(True)), "inactive_sender"
    ),
    Case(
        "inactive_sender_not_yet",
        lambda ctx: _as_unit(ctx, _inactive_unit(False)),
        "inactive_sender",
    ),
    Case("sender_mismatch", _sender_mismatch, "sender_mismatch"),
    Case(
        "test_orgnr",
        lambda ctx: with_sender(
            _small_ord(ctx), ctx.year.small.her, TEST_ORGNR, ctx.year.small.resh
        ),
        "test_orgnr",
        status=Status.TEST,
    ),
    Case(
        "validation_service",
        lambda ctx: mutate(
            _small_ord(ctx), (f"<Id>{PRODUCTION_HER}</Id>", f"<Id>{VALIDATION_HER}</Id>")
        ),
        "validation_service",
        status=Status.TEST,
    ),
    Case("too_large", _padded, "too_large", max_bytes=300_000),
]


def _context(year: Year, tmp_path: Path, server: socket.socket) -> Context:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET + "\n", encoding="utf-8")
    return Context(year=year, secret=secret, port=server.getsockname()[1])


def _clean_files(year: Year) -> list[tuple[Unit, Path]]:
    """A clean file of each unit the hostile files claim to be."""
    return [(year.big, year.big.file("ord", 1)), (year.small, year.small.file("ord", 2))]


def _files_under(root: Path) -> Iterator[Path]:
    return (p for p in root.rglob("*") if p.is_file())


def _assert_good(home: Home, result: SubmissionResult, unit: Unit) -> None:
    assert result.status == Status.ACCEPTED, result.reasons
    assert result.reasons == []
    assert result.unit == unit.resh
    for table in ("episodes", "patients"):
        assert part_files(home, table, [result.submission_id])[result.submission_id].is_file()


def _assert_hostile(home: Home, result: SubmissionResult, case: Case) -> None:
    codes = [r.code for r in result.reasons]
    errors = {r.code for r in result.reasons if r.severity == "error"}
    assert result.status == case.status, (case.name, codes, [r.message for r in result.reasons])
    if case.status == Status.REJECTED:
        assert errors == {case.code}, [r.message for r in result.reasons]
    else:
        assert errors == set() and case.code in codes
    assert all(r.message.startswith(CODES[r.code]) for r in result.reasons)
    assert result.episodes == 0
    assert tables_of(home, result.submission_id) == []
    record = read_record(home, result.submission_id)
    assert record is not None and record.status == case.status
    assert (home.feedback / result.submission_id / "XPR_VAL.xml").exists()


@dataclass(frozen=True)
class Received:
    """One intake of hostile files beside the clean file of each unit, and what it left."""

    home: Home
    by_file: dict[str, SubmissionResult]
    connections: int  # attempts to reach the listening port
    leaked: list[Path]  # files under HOME holding the local secret
    staged: list[Path]  # files left in staging


def _file_name(case: Case) -> str:
    return f"{CASES.index(case):02d}_{case.name}.xml"


@pytest.fixture(scope="module")
def every_case(year: Year, tmp_path_factory: pytest.TempPathFactory) -> dict[int | None, Received]:
    """Every case through one intake per size limit, beside the clean file of each unit (the
    one a hostile file claims to be and the other): by size limit.

    In-process (workers=1), and one intake rather than one per case: forty intakes of two files
    cost ~30 CPU s of make test, and a file's answer does not depend on the files beside it
    (the batch test below sends the cases through the worker pool after clean data).
    """
    root = tmp_path_factory.mktemp("hostile-cases")
    runs = {}
    with _listening() as server:
        ctx = _context(year, root, server)
        for limit in dict.fromkeys(c.max_bytes for c in CASES):
            hostile = {_file_name(c): c.build(ctx) for c in CASES if c.max_bytes == limit}
            clean = [path for _, path in _clean_files(year)]
            inbox = fill_inbox(root / f"inbox-{limit}", clean, **hostile)
            home = Home(root=root / f"home-{limit}")
            summary = run_intake(home, inbox, workers=1, max_bytes=limit)
            runs[limit] = Received(
                home,
                {s.file: s for s in summary.submissions},
                _connections(server),
                [p for p in _files_under(home.root) if SECRET.encode() in p.read_bytes()],
                list(_files_under(home.root / "staging")),
            )
    return runs


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_file_gets_its_reason_and_harms_nothing_else(
    case: Case, year: Year, every_case: dict[int | None, Received]
) -> None:
    """Each broken or hostile file beside a clean file of every unit."""
    run = every_case[case.max_bytes]
    clean = _clean_files(year)
    assert len(run.by_file) == len(clean) + sum(c.max_bytes == case.max_bytes for c in CASES)
    for unit, path in clean:
        _assert_good(run.home, run.by_file[path.name], unit)
    _assert_hostile(run.home, run.by_file[_file_name(case)], case)
    assert run.connections == 0, "the parser reached out over the network"
    assert run.leaked == [], "a local file leaked into HOME"
    assert run.staged == [], "staged files left behind"


def test_latin1_file_declaring_iso_8859_1_is_accepted(year: Year, tmp_path: Path) -> None:
    """Real units send ISO-8859-1: æøå must arrive in the lake as the same letters."""
    text = declared(_text(year.small.file("ord", 2)), "ISO-8859-1")
    name = "Blåbærøy Ørsta avdeling"
    start = text.index("<Enhet ")
    navn = text.index('navn="', start) + len('navn="')
    text = text[:navn] + name + text[text.index('"', navn) :]
    data = text.encode("latin-1")
    assert "å".encode("latin-1") in data
    inbox = fill_inbox(tmp_path / "inbox", **{"latin1.xml": data})
    home = Home(root=tmp_path / "home")
    (result,) = run_intake(home, inbox).submissions
    assert result.status == Status.ACCEPTED, result.reasons
    path = part_files(home, "departments", [result.submission_id])[result.submission_id]
    assert name in pq.read_table(path).column("navn").to_pylist()


def test_schema_error_names_the_line(year: Year, tmp_path: Path) -> None:
    """omsorgsniva 7 does not exist: rejected with schema_error on the Episode's own line."""
    text = _text(year.small.file("ord", 2))
    start = text.index('omsorgsniva="') + len('omsorgsniva="')
    text = text[:start] + "7" + text[text.index('"', start) :]
    data = text.encode(_encoding_name(text))
    inbox = fill_inbox(tmp_path / "inbox", [year.big.file("ord", 1)], **{HOSTILE: data})
    home = Home(root=tmp_path / "home")
    summary = run_intake(home, inbox)
    by_file = {s.file: s for s in summary.submissions}
    _assert_good(home, by_file[year.big.file("ord", 1).name], year.big)
    bad = by_file[HOSTILE]
    assert bad.status == Status.REJECTED
    schema_errors = [r for r in bad.reasons if r.code == "schema_error"]
    assert schema_errors and {r.code for r in bad.reasons} == {"schema_error"}
    assert schema_errors[0].line == line_of(data, b'omsorgsniva="7"')
    assert tables_of(home, bad.submission_id) == []


def test_inactive_in_imported_registry(year: Year, tmp_path: Path) -> None:
    """The newest imported registry decides: a unit closed there is refused, others are not."""
    registry = pd.read_csv(year.registry, dtype=str, keep_default_na=False)
    registry.loc[registry["reshID"] == year.small.resh, "valid_to"] = "2025-12-31"
    changed = tmp_path / "registry.csv"
    registry.to_csv(changed, index=False)
    home = Home(root=tmp_path / "home").ensure()
    import_registry(home, changed)
    good, closed = year.big.file("ord", 1), year.small.file("ord", 2)
    summary = run_intake(home, fill_inbox(tmp_path / "inbox", [good, closed]))
    by_file = {s.file: s for s in summary.submissions}
    _assert_good(home, by_file[good.name], year.big)
    assert by_file[closed.name].status == Status.REJECTED
    assert {r.code for r in by_file[closed.name].reasons} == {"inactive_sender"}
    assert tables_of(home, by_file[closed.name].submission_id) == []


def test_duplicate_changes_nothing(year: Year, tmp_path: Path) -> None:
    """The same bytes under another name, in the same run and in a later one: duplicates."""
    clean = year.big.file("ord", 1)
    inbox = fill_inbox(tmp_path / "inbox", [clean], **{"resent.xml": clean.read_bytes()})
    home = Home(root=tmp_path / "home")
    first = run_intake(home, inbox)
    by_file = {s.file: s for s in first.submissions}
    assert by_file[clean.name].status == Status.ACCEPTED
    assert by_file["resent.xml"].status == Status.DUPLICATE
    assert [r.code for r in by_file["resent.xml"].reasons] == ["duplicate"]
    assert len(load_records(home)) == 1
    tables = stored_tables(home)
    again = run_intake(home, inbox)
    assert [s.status for s in again.submissions] == [Status.DUPLICATE, Status.DUPLICATE]
    assert all(s.unit == year.big.resh for s in again.submissions)
    assert len(load_records(home)) == 1
    assert stored_tables(home) == tables


def test_ide_mismatch_is_a_warning(year: Year, tmp_path: Path) -> None:
    """An ide missing one patient of its ord is accepted, with the patient named."""
    ord_file, ide_file = year.big.file("ord", 2), year.big.file("ide", 2)
    text = decode(ide_file.read_bytes())
    start = text.index("<PasientIdent ")
    end = text.index("\n", start) + 1
    pid = text[start:end].split('pid="', 1)[1].split('"', 1)[0]
    data = (text[:start] + text[end:]).encode(_encoding_name(text))
    inbox = fill_inbox(tmp_path / "inbox", [ord_file], **{ide_file.name: data})
    home = Home(root=tmp_path / "home")
    summary = run_intake(home, inbox)
    assert [s.status for s in summary.submissions] == [Status.ACCEPTED, Status.ACCEPTED]
    warnings = [r for s in summary.submissions for r in s.reasons]
    assert [(r.code, r.severity) for r in warnings] == [("ide_mismatch", "warning")]
    assert pid in warnings[0].message
    current = current_submissions(load_ledger(home))
    assert set(current["message_type"]) == {"NPR_ORD", "NPR_IDE"}


def _rows(frame: pd.DataFrame, unit: str, columns: list[str]) -> list[tuple]:
    return sorted(map(tuple, frame.loc[frame["unit"] == unit, columns].astype(str).values))


def _encoding_name(text: str) -> str:
    return text.split('encoding="', 1)[1].split('"', 1)[0]


def test_hostile_batch_never_changes_another_units_data(
    year: Year, tmp_path: Path, listener: socket.socket
) -> None:
    """All hostile files at once, after clean data of every unit: the clean data is untouched."""
    home = Home(root=tmp_path / "home")
    clean = [
        u.file(msg, m) for u in (year.big, year.small) for msg in ("ord", "ide") for m in (1, 2)
    ]
    baseline = run_intake(home, fill_inbox(tmp_path / "clean", clean))
    assert baseline.count(Status.ACCEPTED) == len(clean)
    tables = stored_tables(home)
    current = current_submissions(load_ledger(home))
    ctx = _context(year, tmp_path, listener)
    cases = [c for c in CASES if c.max_bytes is None]
    hostile = {f"{i:02d}_{c.name}.xml": c.build(ctx) for i, c in enumerate(cases)}
    summary = run_intake(home, fill_inbox(tmp_path / "hostile", **hostile))
    by_file = {s.file: s for s in summary.submissions}
    for i, case in enumerate(cases):
        result = by_file[f"{i:02d}_{case.name}.xml"]
        assert result.status == case.status, (case.name, [r.code for r in result.reasons])
    for result in summary.submissions:
        if result.status != Status.ACCEPTED:
            assert tables_of(home, result.submission_id) == [], result.file
    big = f"unit={year.big.resh}"
    assert {k: v for k, v in stored_tables(home).items() if big in k} == {
        k: v for k, v in tables.items() if big in k
    }
    after = current_submissions(load_ledger(home))
    key = ["unit", "message_type", "submission_id", "lopenr"]
    assert _rows(after, year.big.resh, key) == _rows(current, year.big.resh, key)
    assert _connections(listener) == 0


def test_a_files_syntax_errors_are_its_own(tmp_path: Path) -> None:
    """libxml2's error log is per thread: an earlier file's entity error must not make a later
    truncated file ``entity_forbidden`` (one worker reads many files)."""
    from lxml import etree

    from npr_pipeline.intake.safe_xml import classify_syntax_error, hardened_iterparse

    entity, truncated = tmp_path / "a.xml", tmp_path / "b.xml"
    entity.write_bytes(b'<?xml version="1.0"?><r>&foo;</r>')
    truncated.write_bytes(b'<?xml version="1.0"?><r><x>abc</x>')
    codes = []
    for path in (entity, truncated):
        with pytest.raises(etree.XMLSyntaxError) as caught:
            for _ in hardened_iterparse(path, ("end",)):
                pass
        codes.append(classify_syntax_error(caught.value, path, started=True).code)
    assert codes == ["entity_forbidden", "truncated"]


def _as_read(result: ReadResult, staging: Path) -> dict[str, object]:
    """Everything a read learned, its staged tables by content rather than by path."""
    found = dict(vars(result))
    found["staged"] = {
        table: (path.relative_to(staging), pq.read_table(path))
        for table, path in result.staged.items()
    }
    return found


def test_the_probes_route_gives_the_careful_routes_answer(
    year: Year, tmp_path: Path, listener: socket.socket
) -> None:
    """A hostile file the native probe lets skip ``daily_header`` and the prolog check
    (``untyped_by_probe``) reads exactly as through both: the same reasons (codes, messages,
    lines), header, gate, attributes, counts and rows. The others keep the careful route,
    today's code unchanged."""
    ctx = _context(year, tmp_path, listener)
    index = RegistryIndex(read_registry_csv(year.registry))
    fast = set()
    for case in CASES:
        path = tmp_path / f"{case.name}.xml"
        path.write_bytes(case.build(ctx))
        if not (0 < path.stat().st_size <= (case.max_bytes or 1 << 30)):
            continue
        if not untyped_by_probe(path):
            continue
        fast.add(case.name)
        assert daily_header(path) is None, case.name
        reads = []
        for proven in (True, False):
            staging = tmp_path / f"staging-{case.name}-{proven}"
            read = read_submission(
                path, index, staging, "sid", date(2026, 3, 10), 1 << 30, prechecked=proven
            )
            reads.append(_as_read(read, staging))
        assert reads[0] == reads[1], case.name
    careful = {"billion_laughs", "not_xml_csv", "unknown_root", "utf16_with_bom", "ebcdic_bytes"}
    assert {"unknown_sender", "wrong_version", "truncated_large", "not_xml_deeply_nested"} <= fast
    assert not careful & fast, sorted(fast)
