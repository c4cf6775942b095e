"""A declarative native extractor for ord/ide, evaluated against the lxml reader (issue 14).

xml2arrow (Rust, quick-xml, Arrow batches) reads a file into tables described by a YAML
mapping. This module builds that mapping from the lake's own column list
(:data:`npr_pipeline.store.lake.TABLES`) and turns xml2arrow's output into the lake's tables,
so ``benchmarks.reader_floor`` can time extraction by xml2arrow against extraction by lxml on
the same files. It is a measurement, not the intake path: it never validates (that stays with
libxml2, run before it) and it cannot give source lines, which the lake's ``line`` columns hold
(left null here; see docs/decisions/extraction.md).

Two limits of xml2arrow 0.19 shape the mapping, both found on our files:

- an attribute of an element that is itself a table's ``xml_path`` lands on the first row of
  that table only (``Objektholder/@pasientNr``, ``Episode/@episodeID``), and is lost if the
  element has no rows (an Episode without Tilstand or Tjeneste);
- rows are every child of a table's element, whatever its name.

So a file is read in two passes: an *outer* one whose tables stop at Objektholder (one row per
Pasient, Episode or Henvisningsperiode, told apart by a required attribute) and an *inner* one
for what lies below Episode and Henvisningsperiode, linked back by xml2arrow's level indexes.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from npr_pipeline.intake.tables import convert
from npr_pipeline.store.lake import KEYS, TABLES, part_schema, schema_of

INST = "/MsgHead/Document/RefDoc/Content/Melding/Institusjon"
HOLDER = f"{INST}/Objektholder"
EPISODE_ATTRS = [n for n, _ in TABLES["episodes"][1:-1]]  # after pasientNr, before line
REFERRAL_ATTRS = [n for n, _ in TABLES["referrals"][1:-1]]
PATIENT_ATTRS = [n for n, _ in TABLES["patients"][1:-1]]
DEPARTMENT_ATTRS = [n for n, _ in TABLES["departments"]]


def _field(name: str, path: str) -> dict[str, object]:
    return {"name": name, "xml_path": path, "data_type": "Utf8", "nullable": True}


def _table(name: str, path: str, levels: list[str], fields: list[dict]) -> dict[str, object]:
    return {"name": name, "xml_path": path, "levels": levels, "fields": fields}


def outer_config() -> dict[str, object]:
    """Departments, and one row per child of Objektholder with every attribute it may hold."""
    children = [_field("pasientNr", f"{HOLDER}/@pasientNr")]
    children += [_field(f"p.{a}", f"{HOLDER}/Pasient/@{a}") for a in PATIENT_ATTRS]
    children += [_field(f"e.{a}", f"{HOLDER}/Episode/@{a}") for a in EPISODE_ATTRS]
    children += [_field(f"h.{a}", f"{HOLDER}/Henvisningsperiode/@{a}") for a in REFERRAL_ATTRS]
    return {
        "tables": [
            _table(
                "institution",
                INST,
                ["holder"],
                [_field(a, f"{INST}/Enhet/@{a}") for a in DEPARTMENT_ATTRS],
            ),
            _table("children", HOLDER, ["holder", "child"], children),
        ]
    }


def inner_config() -> dict[str, object]:
    """Diagnoses and procedures under Episode, postponements under Henvisningsperiode."""
    episode, tjeneste = f"{HOLDER}/Episode", f"{HOLDER}/Episode/Tjeneste"
    tiltak, referral = f"{tjeneste}/Tiltak", f"{HOLDER}/Henvisningsperiode"
    code = ("kodeNr", "kodeverk")
    return {
        "tables": [
            _table("institution", INST, ["holder"], []),
            _table("children", HOLDER, ["holder", "child"], []),
            _table(
                "diagnoses",
                episode,
                ["holder", "child", "part"],
                [_field("tilstNr", f"{episode}/Tilstand/@tilstNr")]
                + [_field(c, f"{episode}/Tilstand/Kode/@{c}") for c in code],
            ),
            _table("tjeneste", tjeneste, ["holder", "child", "part", "tiltak"], []),
            _table(
                "procedures",
                tiltak,
                ["holder", "child", "part", "tiltak", "proc"],
                [_field(c, f"{tiltak}/Prosedyre/Kode/@{c}") for c in code]
                + [_field("dato", f"{tiltak}/Prosedyre/@dato")],
            ),
            _table(
                "postponements",
                referral,
                ["holder", "child", "post"],
                [
                    _field(a, f"{referral}/Utsettelse/@{a}")
                    for a in ("utsettelseskode", "utsettelsesdato", "utsettelseSluttdato")
                ],
            ),
        ]
    }


def ide_config() -> dict[str, object]:
    return {
        "tables": [
            _table(
                "idents",
                INST,
                ["holder"],
                [_field(a, f"{INST}/PasientIdent/@{a}") for a in ("pid", "fid", "fidType")],
            )
        ]
    }


@functools.cache
def parser(kind: str):  # noqa: ANN201 - xml2arrow ships no importable type for the annotation
    """One compiled xml2arrow parser per mapping, reused for every file (its advice)."""
    import xml2arrow

    config = {"outer": outer_config, "inner": inner_config, "ide": ide_config}[kind]()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(config, fh)
    try:
        return xml2arrow.XmlToArrowParser(fh.name)
    finally:
        Path(fh.name).unlink()


def _utf8(path: Path) -> bytes:
    """The file as UTF-8 bytes: xml2arrow reads UTF-8 only, the standard allows ISO-8859-1 too
    (intake accepts nothing else, see safe_xml); the declaration is rewritten to match."""
    data = path.read_bytes()
    head = data[:100].lower()
    if b"iso-8859-1" in head or b"latin" in head:
        end = data.index(b"?>") + 2
        data = b'<?xml version="1.0" encoding="UTF-8"?>' + data[end:].decode("latin-1").encode()
    return data


def _u32(batch: pa.RecordBatch, level: str) -> np.ndarray:
    return batch.column(f"<{level}>").to_numpy().astype(np.int64)


def _row_of(
    holder: np.ndarray, child: np.ndarray, children_holder: np.ndarray, shift: int
) -> np.ndarray:
    """Row in the outer ``children`` table of each inner (holder, child) index pair.

    The inner pass numbers Objektholder without the Enhet before them (``shift``) and their
    children without the Pasient that comes first (the schema's order).
    """
    holder, child = holder + shift, child + 1
    counts = np.bincount(children_holder, minlength=int(holder.max(initial=-1)) + 1)
    start = np.concatenate(([0], np.cumsum(counts)[:-1]))
    return start[holder] + child


def _lake(table: str, columns: dict[str, pa.Array], keys: tuple[str, str, int]) -> pa.Table:
    """Columns by lake name into the lake's part-file schema (``line`` null: xml2arrow has no
    lines)."""
    n = len(next(iter(columns.values())))
    arrays = [pa.repeat(pa.scalar(v, t), n) for v, (_, t) in zip(keys, KEYS, strict=True)]
    for name, dtype in TABLES[table]:
        if name == "line":
            arrays.append(pa.nulls(n, dtype))
        else:
            arrays.append(convert(columns[name], dtype, table, name))
    return pa.Table.from_arrays(arrays, schema=schema_of(table)).cast(part_schema(table))


def extract_ord(path: Path, keys: tuple[str, str, int]) -> dict[str, pa.Table]:
    """The seven ord tables of one (already validated) file."""
    source = _utf8(path)
    outer = parser("outer").parse(source)
    inner = parser("inner").parse(source)
    dep = outer["institution"]
    departments = dep.filter(pc.is_valid(dep.column("reshID")))
    shift = departments.num_rows
    kids = outer["children"]
    kid_holder = _u32(kids, "holder")
    pnr = pc.fill_null_forward(kids.column("pasientNr"))  # on each holder's first child only
    tables = {
        "departments": _lake(
            "departments", {a: departments.column(a) for a in DEPARTMENT_ATTRS}, keys
        )
    }
    for table, prefix, attrs, marker in (
        ("patients", "p.", PATIENT_ATTRS, "kjonn"),
        ("episodes", "e.", EPISODE_ATTRS, "episodeID"),
        ("referrals", "h.", REFERRAL_ATTRS, "henvisningsperiodeID"),
    ):
        mask = pc.is_valid(kids.column(prefix + marker))
        cols = {a: kids.column(prefix + a).filter(mask) for a in attrs}
        tables[table] = _lake(table, {"pasientNr": pnr.filter(mask)} | cols, keys)
    parents = {
        "episodeID": kids.column("e.episodeID"),
        "henvisningsperiodeID": kids.column("h.henvisningsperiodeID"),
    }
    for table, marker, parent, own in (
        ("diagnoses", "tilstNr", "episodeID", ("tilstNr", "kodeNr", "kodeverk")),
        ("procedures", "kodeNr", "episodeID", ("kodeNr", "kodeverk", "dato")),
        ("postponements", "utsettelseskode", "henvisningsperiodeID",
         ("utsettelseskode", "utsettelsesdato", "utsettelseSluttdato")),
    ):  # fmt: skip
        batch = inner[table].filter(pc.is_valid(inner[table].column(marker)))
        found = _row_of(_u32(batch, "holder"), _u32(batch, "child"), kid_holder, shift)
        rows = pa.array(found)
        columns = {"pasientNr": pnr.take(rows), parent: parents[parent].take(rows)}
        columns |= {c: batch.column(c) for c in own}
        if table == "procedures":  # numbered per episode, in document order
            columns["seq"] = pa.array(_sequence(found), pa.int32())
        tables[table] = _lake(table, columns, keys)
    return tables


def _sequence(groups: np.ndarray) -> np.ndarray:
    """1, 2, … within each run of equal group ids (procedures numbered per episode)."""
    if len(groups) == 0:
        return groups
    starts = np.flatnonzero(np.concatenate(([True], groups[1:] != groups[:-1])))
    lengths = np.diff(np.concatenate((starts, [len(groups)])))
    return np.arange(len(groups)) - np.repeat(starts, lengths) + 1


def extract_ide(path: Path, keys: tuple[str, str, int]) -> dict[str, pa.Table]:
    idents = parser("ide").parse(_utf8(path))["idents"]
    idents = idents.filter(pc.is_valid(idents.column("pid")))
    cols = {a: idents.column(a) for a in ("pid", "fid", "fidType")}
    return {"idents": _lake("idents", cols, keys)}


def write(tables: dict[str, pa.Table], out: Path) -> None:
    """Each table as one zstd Parquet file, as the reader's sinks write them (empty ones too)."""
    out.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, out / f"{name}.parquet", compression="zstd")
