"""Hand-built ord/ide submissions for the rule tests: few records, every value chosen by hand.

The rule tests compute their expected outputs with pencil and paper, so the input must be just
as explicit: one unit, named patients, referrals and episodes with exact dates. The files are
real submissions (MsgHead envelope around a ``Melding``), written into an inbox and received by
the real intake, so a rule is tested on what production actually reads, not on a DataFrame
slipped in behind the gate. Every payload is validated against its message schema here, so a
typo in a case fails loudly in the builder instead of as a puzzling rejected file.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from xml.sax.saxutils import quoteattr

import duckdb
import pandas as pd
from lxml import etree

from npr_pipeline import reference
from npr_pipeline.envelope import NPR_PRODUCTION, Party, close_envelope, open_envelope
from npr_pipeline.home import Home
from npr_pipeline.identity import synthetic_fnr
from npr_pipeline.intake.run import IntakeSummary, intake_directory
from npr_pipeline.messages import get
from npr_pipeline.periods import Period, month_end
from npr_pipeline.production.run import produce
from npr_pipeline.production.snapshot import build_snapshot, record_verdict
from npr_pipeline.registry import import_registry
from npr_pipeline.schemas import hardened_parser
from npr_pipeline.settings import TEST, record_environment

YEAR = 2026
VERSION = reference.message_version(YEAR)
UNITS_CSV = reference.reference_dir() / "units.csv"


# -- units ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Unit:
    """A real unit of the reference registry (its idents are what the gate checks)."""

    resh: str
    orgnr: str
    her: str
    name: str
    rhf: str
    ownership: str

    @property
    def party(self) -> Party:
        return Party(self.name, her=self.her, orgnr=self.orgnr, resh=self.resh)


# A privately funded provider without an RHF agreement (TB2026-12: they report too): not in
# the bundled registry, so the tests add its row. No RHF (it works under no agreement), no ISF
# agreement, financing private.
PRIVATE_PROVIDER_ROW = {
    "reshID": "9990001", "orgnr": "998000009", "herID": "9990001",
    "name": "Privatklinikken Bryggen AS", "unit_type": "private_provider", "parent_trust": "",
    "rhf": "", "komnr": "4601", "ownership": "private", "financing": "private",
    "sector": "somatic", "fagomrade": "110", "isf_agreement": "false",
    "message_types": "NPR_ORD;NPR_IDE", "size_weight": "1", "valid_from": "2026-01-01",
    "valid_to": "", "source": "tests/handbuilt",
}  # fmt: skip


def _registry_rows() -> pd.DataFrame:
    bundled = pd.read_csv(UNITS_CSV, dtype=str, comment="#", keep_default_na=False)
    return pd.concat([bundled, pd.DataFrame([PRIVATE_PROVIDER_ROW])], ignore_index=True)


def unit(resh: str) -> Unit:
    """The registry row of ``resh`` as a :class:`Unit`."""
    rows = _registry_rows()
    row = rows[rows["reshID"] == resh].iloc[0]
    return Unit(resh, row["orgnr"], row["herID"], row["name"], row["rhf"], row["ownership"])


# Helse Bergen HF, Haukeland (public, Helse Vest) and Aleris Bergen sentrum (private, works
# under a Helse Vest agreement): one public and one private provider in the same region.
HAUKELAND = unit("4802960")
ALERIS = unit("6574287")
BRYGGEN = unit(PRIVATE_PROVIDER_ROW["reshID"])  # private, privately funded, no RHF agreement


def import_units(home: Home, units: list[Unit], folder: Path) -> None:
    """A registry holding only ``units``, so the gate and obligations are about them alone."""
    rows = _registry_rows()
    path = folder / "registry.csv"
    rows[rows["reshID"].isin([u.resh for u in units])].to_csv(path, index=False)
    import_registry(home, path)


# -- records --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Department:
    """An ``Enhet`` of the message (episodes and referrals name it by reshID)."""

    resh: str
    name: str
    sektor: str | None = None
    nace: str | None = None
    enhetstype: str | None = None  # B behandlingssted, F fagenhet (58.0.1)
    avdeling: str | None = None

    def xml(self) -> str:
        names = ("reshID", "navn", "sektor", "nace", "enhetstype", "avdeling")
        values = (self.resh, self.name, self.sektor, self.nace, self.enhetstype, self.avdeling)
        return f"<Enhet {_attrs(dict(zip(names, values, strict=True)))}/>"


@dataclass(frozen=True)
class Postponement:
    """``Utsettelse``: code 4/21/22 are the patient's own choice, 1/3/5 are not."""

    code: str
    start: date
    end: date | None = None


@dataclass(frozen=True)
class Referral:
    """``Henvisningsperiode``; received/assessed default to the ansiennitetsdato."""

    id: str
    seniority: date
    deadline: date | None
    care_start: date | None = None
    ended: date | None = None
    end_code: str | None = None
    fagomrade: str = "110"
    resh: str | None = None
    received: date | None = None
    assessed: date | None = None
    postponements: tuple[Postponement, ...] = ()

    def xml(self, default_resh: str) -> str:
        received = self.received or self.seniority
        ended, code = self.ended, self.end_code
        if self.care_start is not None:
            ended, code = ended or self.care_start, code or "1"
        attrs = {
            "henvisningsperiodeID": self.id,
            "reshID": self.resh or default_resh,
            "fagomrade": self.fagomrade,
            "mottattDato": received,
            "ansiennitetsdato": self.seniority,
            "vurderingsdato": self.assessed or received,
            "prioritet": "1",
            "fristStartHelsehjelp": self.deadline,
            "tjenestestart": self.care_start,
            "avviklingsdato": ended,
            "avviklingskode": code,
        }
        children = "".join(
            f'<Utsettelse utsettelseskode="{p.code}" utsettelsesdato="{p.start}"'
            + (f' utsettelseSluttdato="{p.end}"' if p.end else "")
            + "/>"
            for p in self.postponements
        )
        return f"<Henvisningsperiode {_attrs(attrs)}>{children}</Henvisningsperiode>"


@dataclass(frozen=True)
class Episode:
    """``Episode``: planned outpatient contact by default; times are local date-times."""

    id: str
    start: datetime
    end: datetime
    level: str = "3"
    urgency: str = "4"
    contact: str = "2"
    fagomrade: str = "110"
    diagnoses: tuple[str, ...] = ("M171",)
    procedures: tuple[str, ...] = ()
    referral: str | None = None
    drg: str | None = None
    resh: str | None = None
    komnr: str | None = None
    debitor: str = "1"  # who pays: 1 ordinary; 30/32 the patient, 60 an insurer

    def xml(self, default_resh: str, komnr: str) -> str:
        attrs = {
            "episodeID": self.id,
            "reshID": self.resh or default_resh,
            "fagomrade": self.fagomrade,
            "omsorgsniva": self.level,
            "innmateHast": self.urgency,
            "kontaktType": self.contact,
            "debitor": self.debitor,
            "komNrHjem": self.komnr or komnr,
            "innDatoTid": self.start.isoformat(timespec="seconds"),
            "utDatoTid": self.end.isoformat(timespec="seconds"),
            "henvisningsperiodeID": self.referral,
            "drg": self.drg,
            "drgKilde": "NPK" if self.drg else None,
        }
        conditions = "".join(
            f'<Tilstand tilstNr="{i}"><Kode kodeNr="{code}" kodeverk="D"/></Tilstand>'
            for i, code in enumerate(self.diagnoses, start=1)
        )
        services = "".join(
            f'<Tjeneste><Tiltak><Prosedyre><Kode kodeNr="{code}" kodeverk="K"/>'
            "</Prosedyre></Tiltak></Tjeneste>"
            for code in self.procedures
        )
        return f"<Episode {_attrs(attrs)}>{conditions}{services}</Episode>"


@dataclass(frozen=True)
class Patient:
    """``Objektholder``: the unit's patient number, the identity and the patient's records."""

    nr: str
    fnr: str
    komnr: str = "4601"
    referrals: tuple[Referral, ...] = ()
    episodes: tuple[Episode, ...] = ()
    sex: str = "2"

    @property
    def birth_year(self) -> str:
        """Year of birth from the fødselsnummer (synthetic numbers born 1900-1999 here)."""
        return f"19{self.fnr[4:6]}"


def fnr(birth: date, n: int = 1) -> str:
    """A valid synthetic fødselsnummer for ``birth`` (the n-th that exists for the date)."""
    found = 0
    for individual in range(0, 500):
        number = synthetic_fnr(birth, individual)
        if number is not None:
            found += 1
            if found == n:
                return number
    raise ValueError(f"no synthetic number {n} for {birth}")


def at(day: str, clock: str = "09:00") -> datetime:
    """``at("2026-03-02", "10:30")``: a local date-time, short to write in a case."""
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock))


def d(day: str) -> date:
    """``d("2026-03-02")``: a date, short to write in a case."""
    return date.fromisoformat(day)


# -- files ----------------------------------------------------------------------------------
@dataclass
class Submission:
    """One unit's cumulative delivery (ord + ide) up to the end of ``month``."""

    unit: Unit
    month: int
    lopenr: int
    patients: list[Patient]
    departments: list[Department] = field(default_factory=list)
    idents: list[tuple[str, str]] | None = None  # override (pid, fid) pairs of the ide

    @property
    def cutoff(self) -> date:
        return month_end(YEAR, self.month)

    @property
    def extracted(self) -> datetime:
        return datetime.combine(self.cutoff + timedelta(days=2), time(2, 0))

    def melding(self, msg: str) -> str:
        """The ``Melding`` element of the ord or ide message, validated against its schema."""
        head = {
            "versjon": VERSION,
            "meldingstype": "B",
            "fraDatoPeriode": date(YEAR, 1, 1),
            "tilDatoPeriode": self.cutoff,
            "uttakDato": self.extracted.date(),
            "leverandor": "Handbygd AS",
            "navnEPJ": "HandEPJ",
            "versjonEPJ": "1.0",
            "versjonUt": "tests/handbuilt",
            "lopenr": self.lopenr,
        }
        parts = [
            f'<Melding xmlns="{get(msg, VERSION).namespace}" {_attrs(head)}>',
            '<Kontaktperson typeKontaktperson="1" navn="Teknisk kontakt"/>',
            f"<Institusjon institusjonID={quoteattr(self.unit.orgnr)}"
            f" navn={quoteattr(self.unit.name)}>",
        ]
        if msg == "ord":
            departments = self.departments or [Department(self.unit.resh, self.unit.name)]
            parts += [x.xml() for x in departments]
            for p in self.patients:
                parts.append(
                    f'<Objektholder pasientNr="{p.nr}"><Pasient kjonn="{p.sex}"'
                    f' fodselsar="{p.birth_year}" komNrHjem="{p.komnr}"/>'
                )
                parts += [r.xml(self.unit.resh) for r in p.referrals]
                parts += [e.xml(self.unit.resh, p.komnr) for e in p.episodes]
                parts.append("</Objektholder>")
        else:
            pairs = self.idents if self.idents is not None else [
                (p.nr, p.fnr) for p in self.patients
            ]  # fmt: skip
            parts += [f'<PasientIdent pid="{pid}" fid="{fid}" fidType="1"/>' for pid, fid in pairs]
        parts.append("</Institusjon></Melding>")
        text = "".join(parts)
        validator = get(msg, VERSION).schema()
        tree = etree.fromstring(text.encode("utf-8"), hardened_parser())
        if not validator.validate(tree):
            raise AssertionError(f"hand-built {msg} is not schema-valid: {validator.error_log}")
        return text

    def file(self, msg: str) -> bytes:
        """The whole file: XML declaration, MsgHead envelope, payload."""
        msg_type = "NPR_ORD" if msg == "ord" else "NPR_IDE"
        msg_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"handbuilt/{self.name(msg)}"))
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            + open_envelope(msg_type, msg_id, self.extracted, self.unit.party, NPR_PRODUCTION)
            + self.melding(msg)
            + close_envelope()
        ).encode("utf-8")

    def name(self, msg: str) -> str:
        return f"{self.unit.resh}_{YEAR}-{self.month:02d}_{self.lopenr:03d}_{msg}.xml"

    def write(self, inbox: Path) -> list[Path]:
        """Both files into ``inbox``."""
        inbox.mkdir(parents=True, exist_ok=True)
        paths = []
        for msg in ("ord", "ide"):
            path = inbox / self.name(msg)
            path.write_bytes(self.file(msg))
            paths.append(path)
        return paths


def _attrs(values: dict[str, object]) -> str:
    """Attributes in order, leaving out the ones that are None."""
    return " ".join(f"{k}={quoteattr(str(v))}" for k, v in values.items() if v is not None)


# -- running --------------------------------------------------------------------------------
def new_home(root: Path, units: list[Unit]) -> Home:
    """A HOME that accepts synthetic fødselsnummer and knows only ``units``."""
    home = Home(root=root / "home").ensure()
    record_environment(home, TEST, "tests")
    import_units(home, units, root)
    return home


def receive(home: Home, inbox: Path, *submissions: Submission) -> IntakeSummary:
    """Write the submissions into a fresh inbox and run the real intake; all must be accepted."""
    for sub in submissions:
        sub.write(inbox)
    summary = intake_directory(home, inbox, workers=1)
    refused = [(s.file, s.status, [r.code for r in s.reasons]) for s in summary.submissions
               if s.status != "accepted"]  # fmt: skip
    assert not refused, f"hand-built files not accepted: {refused}"
    return summary


def run_step(home: Home, period: str, step: str) -> int:
    """Produce one step for one period; returns the new delivery version.

    The rule tests check the rules, not the GX suites: the snapshot is built and passed as
    ``core/production_input`` would after green checks (their own tests run them for real).
    """
    built = Period.parse(period)
    record_verdict(home, built, build_snapshot(home, built), "test-run", passed=True)
    return produce(home, built, step, "test-run").version


def current(home: Home, table: str, period: str) -> pd.DataFrame:
    """The current version of one delivery table for one period, from the warehouse."""
    return query(home, f'SELECT * FROM "{table}_current" WHERE period = ?', [period])


def query(home: Home, sql: str, params: list[object] | None = None) -> pd.DataFrame:
    """A read-only query against ``HOME/warehouse.duckdb``."""
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).df()
    finally:
        con.close()
