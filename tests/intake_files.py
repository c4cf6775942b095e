"""Build real, broken and hostile submissions for the intake tests.

Everything starts from clean files of the synthetic generator, so a mutated file differs from
an acceptable one in exactly the way a test names; the mutations work on decoded text (in the
file's own declared encoding) or on raw bytes where the bytes themselves are the point.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from npr_pipeline import reference
from npr_pipeline.envelope import PRODUCTION_HER, VALIDATION_HER
from npr_pipeline.home import Home
from npr_pipeline.intake.run import IntakeSummary, intake_directory
from npr_pipeline.registry import import_registry
from npr_pipeline.schemas import MSGHEAD_NS
from npr_pipeline.settings import TEST, record_environment
from npr_pipeline.store import state
from npr_pipeline.store.lake import CHUNK, MONTHLY, TABLES, part_files, rows_of
from npr_pipeline.store.ledger import load_records
from npr_pipeline.synth.run import SynthOptions, run_synth

INTAKE_TIMEOUT = 60.0
_DECLARATION = re.compile(rb'^<\?xml[^>]*encoding="([^"]+)"')
_SENDER = re.compile(r"<Sender>.*?</Sender>", re.S)
_IDENT = re.compile(r'<Ident><Id>([^<]*)</Id><TypeId V="(HER|ENH|RSH)"')


@dataclass(frozen=True)
class Unit:
    """One synthetic unit and its clean files, by ``(msg, month)``."""

    resh: str
    her: str
    orgnr: str
    files: dict[tuple[str, int], Path]

    def file(self, msg: str, month: int) -> Path:
        return self.files[(msg, month)]


def make_year(
    out: Path, units: int = 3, through: int = 2, seed: int = 5, episodes: float = 5.0
) -> dict[str, Unit]:
    """A small clean synthetic year; units by RESH id (read back from the files' headers)."""
    options = SynthOptions(
        out=out,
        year=2026,
        through=through,
        units=units,
        seed=seed,
        episodes_per_unit_month=episodes,
    )
    run_synth(options)
    found: dict[str, Unit] = {}
    for path in sorted((out / "inbox").glob("*_*_[oi][rd][de].xml")):  # ord and ide files
        resh, period, msg = path.stem.split("_")
        idents = sender_idents(decode(path.read_bytes()))
        unit = found.setdefault(resh, Unit(resh, idents["HER"], idents["ENH"], files={}))
        unit.files[(msg, int(period[-2:]))] = path
    return found


# -- text and bytes -------------------------------------------------------------------------
def encoding_of(data: bytes) -> str:
    """The encoding a file declares (UTF-8 when it declares none)."""
    match = _DECLARATION.match(data)
    return match.group(1).decode("ascii") if match else "UTF-8"


def decode(data: bytes) -> str:
    """A clean file's text, decoded as it declares."""
    return data.decode(encoding_of(data))


def encode(text: str) -> bytes:
    """Text back to bytes in the encoding its declaration names."""
    return text.encode(encoding_of(text.encode("ascii", "ignore")))


def replace_once(text: str, old: str, new: str) -> str:
    """Replace the first ``old``; failing loudly keeps a mutation from silently doing nothing."""
    assert old in text, f"{old!r} not in the file"
    return text.replace(old, new, 1)


def mutate(path: Path, *edits: tuple[str, str]) -> bytes:
    """A clean file with text edits applied, in its own encoding."""
    text = decode(path.read_bytes())
    for old, new in edits:
        text = replace_once(text, old, new)
    return encode(text)


def declared(text: str, encoding: str) -> str:
    """The same document declaring another encoding."""
    return re.sub(r'encoding="[^"]+"', f'encoding="{encoding}"', text, count=1)


def with_doctype(path: Path, doctype: str, *edits: tuple[str, str]) -> bytes:
    """A clean file with a DOCTYPE right after the XML declaration (and optional edits)."""
    text = decode(path.read_bytes())
    decl, rest = text.split("\n", 1)
    for old, new in edits:
        rest = replace_once(rest, old, new)
    return encode(f"{decl}\n{doctype}\n{rest}")


def sender_idents(text: str) -> dict[str, str]:
    """HER / ENH / RSH of the sender in a header."""
    sender = _SENDER.search(text)
    assert sender is not None
    return {kind: value for value, kind in _IDENT.findall(sender.group(0))}


def with_sender(
    path: Path, her: str, orgnr: str, resh: str, institution: str | None = None
) -> bytes:
    """A clean file claiming other sender idents (and by default the matching institusjonID)."""
    text = decode(path.read_bytes())
    old = sender_idents(text)
    sender = _SENDER.search(text)
    assert sender is not None
    block = sender.group(0)
    for kind, value in (("HER", her), ("ENH", orgnr), ("RSH", resh)):
        block = block.replace(
            f'<Id>{old[kind]}</Id><TypeId V="{kind}"', f'<Id>{value}</Id><TypeId V="{kind}"'
        )
    text = text[: sender.start()] + block + text[sender.end() :]
    text = replace_once(
        text, f'institusjonID="{old["ENH"]}"', f'institusjonID="{institution or orgnr}"'
    )
    return encode(text)


def line_of(data: bytes, needle: bytes) -> int:
    """1-based line number of the first occurrence of ``needle``."""
    index = data.index(needle)
    return data.count(b"\n", 0, index) + 1


MSGHEAD_XMLNS = f'xmlns="{MSGHEAD_NS}"'


# -- running intake -------------------------------------------------------------------------
def run_intake(
    home: Home,
    inbox: Path,
    max_bytes: int | None = None,
    workers: int = 2,
    timeout: float = INTAKE_TIMEOUT,
) -> IntakeSummary:
    """Intake in a daemon thread, so a hanging parser fails the test instead of the suite."""
    prepare_test_home(home)
    done: Future[IntakeSummary] = Future()

    def target() -> None:
        try:
            done.set_result(intake_directory(home, inbox, workers=workers, max_bytes=max_bytes))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting test
            done.set_exception(exc)

    threading.Thread(target=target, name="intake-under-test", daemon=True).start()
    return done.result(timeout=timeout)


def received_year(root: Path, synth_out: Path) -> Home:
    """A HOME that has received a whole synthetic year: its registry imported, synthetic
    fødselsnummer allowed, its inbox through intake (content checks included)."""
    home = prepare_test_home(Home(root=root), synth_out / "registry.csv")
    intake_directory(home, synth_out / "inbox")
    return home


def home_copy(received: Path, root: Path) -> Home:
    """A HOME of its own at ``root``: a copy of a session's received HOME (``conftest``), so
    a module that changes its HOME leaves the others' alone. Nothing inside a HOME names its
    own folder (the lake's log paths are relative), so the copy reads nothing of the original."""
    shutil.copytree(received, root, symlinks=True)
    return Home(root=root)


def prepare_test_home(home: Home, registry: Path | None = None) -> Home:
    """The tests' HOMEs are test HOMEs (CONTRACT.md), with a registry imported: ``registry``
    or, where none has been imported yet, the bundled synthetic one (nothing falls back to
    it by itself)."""
    home.ensure()
    record_environment(home, TEST, "tests")
    if registry is not None or not any(home.registry.glob("registry-v*.csv")):
        import_registry(home, registry or reference.reference_dir() / "units.csv")
    return home


def fill_inbox(inbox: Path, files: Iterable[Path] = (), **named: bytes) -> Path:
    """An inbox with copies of ``files`` and the given ``name=bytes`` files."""
    inbox.mkdir(parents=True, exist_ok=True)
    for path in files:
        shutil.copyfile(path, inbox / path.name)
    for name, data in named.items():
        (inbox / name).write_bytes(data)
    return inbox


# -- looking at HOME ------------------------------------------------------------------------
def _visible(home: Home) -> dict[str, Path]:
    """Every part file readers see (committed batches), by table, unit and submission."""
    units = {r.submission_id: r.unit for r in load_records(home)}
    return {
        f"{table}/unit={units.get(sid)}/{sid}": path
        for table in TABLES
        for sid, path in sorted(part_files(home, table).items())
    }


def stored_tables(home: Home) -> dict[str, str]:
    """Every visible submission's part of a lake or vault table: the SHA-256 of its file's
    path and of its rows there (a chunk's part file holds several submissions)."""
    return {
        key: hashlib.sha256(f"{path}\n{_rows(path, key).to_pylist()}".encode()).hexdigest()
        for key, path in _visible(home).items()
    }


def _rows(path: Path, key: str) -> pa.Table:
    """The rows of the submission ``key`` (of :func:`_visible`) names, in its part file."""
    return rows_of(path, key.rsplit("/", 1)[1])


def tables_of(home: Home, submission_id: str) -> list[Path]:
    """Lake and vault files of one submission, wherever they are: named by it, or a chunk's
    part holding rows of it."""
    bases = (home.lake, home.vault, home.root / "staging")
    named = [path for base in bases for path in base.rglob(f"{submission_id}*")]
    return named + [
        path
        for base in bases
        for path in base.rglob(f"{CHUNK}*.parquet")
        if rows_of(path, submission_id, ["submission_id"]).num_rows
    ]


def forget_records(home: Home, submission_ids: Iterable[str]) -> None:
    """Delete records and their lopenr claims: the state a kill before their commit leaves."""
    ids = list(submission_ids)
    with state.transaction(home, lambda con, home: None) as con:
        for table in ("ledger", "lopenr_claims"):
            con.execute(f"DELETE FROM {table} WHERE submission_id IN (SELECT unnest(?))", [ids])


def ledger_bytes(home: Home) -> dict[str, bytes]:
    """The ledger's records, each as canonical JSON bytes, by submission id."""
    return {
        r.submission_id: json.dumps(asdict(r), sort_keys=True).encode() for r in load_records(home)
    }


def table_contents(home: Home) -> dict[str, object]:
    """Every visible monthly part file (see :func:`stored_tables`), and every other Delta table
    (the report and daily types) by its rows, sorted, without its batch numbers: its file
    names, log and batch order depend on which worker committed first."""
    found: dict[str, object] = {key: _rows(path, key) for key, path in _visible(home).items()}
    monthly = [base / MONTHLY for base in (home.lake, home.vault)]
    for base in (home.lake, home.vault):
        for log in sorted(base.rglob("_delta_log")):
            if any(folder in log.parents for folder in monthly):
                continue
            rows = DeltaTable(log.parent).to_pyarrow_table()
            rows = rows.drop_columns([c for c in ("batch",) if c in rows.column_names])
            found[str(log.parent.relative_to(home.root))] = rows.sort_by(
                [(c, "ascending") for c in rows.column_names]
            )
    return found


# -- answers ------------------------------------------------------------------------------
_EPISODE = re.compile(r'<Episode [^>]*innDatoTid="([^"]+)"[^>]*utDatoTid="([^"]+)"')


def reversed_dates(data: bytes) -> bytes:
    """The first episode with both dates ends before it starts (rule episode_dates_in_order)."""
    text = decode(data)
    match = _EPISODE.search(text)
    assert match is not None
    start, end = match.group(1), match.group(2)
    tag = match.group(0).replace(start, "\0").replace(end, start).replace("\0", end)
    return encode(text[: match.start()] + tag + text[match.end() :])


def to_validation_service(path: Path) -> bytes:
    """A clean file addressed to the validation service instead of production."""
    return mutate(path, (f"<Id>{PRODUCTION_HER}</Id>", f"<Id>{VALIDATION_HER}</Id>"))


def bad_care_level(data: bytes) -> bytes:
    """The first episode's omsorgsniva is 7, a level that does not exist (a schema error)."""
    return encode(re.sub(r'omsorgsniva="\d"', 'omsorgsniva="7"', decode(data), count=1))
