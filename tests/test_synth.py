"""npr synth: deterministic, schema-valid, realistic, with labelled faults."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from npr_pipeline import identity
from npr_pipeline.messages import by_namespace
from npr_pipeline.schemas import MSGHEAD_NS
from npr_pipeline.synth.run import SynthOptions, run_synth

NS = {"mh": MSGHEAD_NS}


def _payload(path: Path) -> etree._Element:
    tree = etree.parse(str(path))
    return tree.find("mh:Document/mh:RefDoc/mh:Content", NS)[0]


def _registry(folder: Path) -> list[dict[str, str]]:
    with open(folder / "registry.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.*"))}


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        run_synth(
            SynthOptions(out=out, year=2026, through=2, units=3, seed=5, episodes_per_unit_month=10)
        )
    assert _digest(a) == _digest(b)
    run_synth(
        SynthOptions(
            out=tmp_path / "c", year=2026, through=2, units=3, seed=6, episodes_per_unit_month=10
        )
    )
    assert _digest(a) != _digest(tmp_path / "c")


def test_one_ord_and_one_ide_per_unit_and_month_and_the_listed_report_types(
    small_year: Path,
) -> None:
    registry = _registry(small_year)
    files = sorted(p.name for p in (small_year / "inbox").iterdir())
    ordinary = [f for f in files if f.endswith(("_ord.xml", "_ide.xml"))]
    assert len(registry) == 6
    assert len(ordinary) == 6 * 4 * 2
    for unit in registry:
        for month in range(1, 5):
            for msg in ("ord", "ide"):
                assert f"{unit['reshID']}_2026-{month:02d}_{msg}.xml" in files
    # the rest are report files, each of a type its unit's registry row lists
    codes = {"kpp": "NPR_KPP", "forlop": "NPR_FORLOP", "vtk": "XPR_VTK", "tsb": "NPR_TSB"}
    types = {u["reshID"]: u["message_types"].split(";") for u in registry}
    reports = [f.split("_")[:2] for f in files if f not in ordinary]
    assert reports, "the trust site of the small year sends KPP"
    assert all(codes[kind] in types[resh] for resh, kind in reports)


def test_every_payload_validates_against_its_schema(small_year: Path) -> None:
    for path in (small_year / "inbox").iterdir():
        melding = _payload(path)
        report = by_namespace(etree.QName(melding).namespace)
        if report is not None and not report.is_event:  # a report type's file
            xsd = report.schema()
            assert xsd.validate(etree.ElementTree(melding)), (path.name, xsd.error_log)
            continue
        mtype = by_namespace(etree.QName(melding).namespace)
        assert mtype is not None and mtype.version == "58.0.1"
        xsd = mtype.schema()
        assert xsd.validate(etree.ElementTree(melding)), (path.name, xsd.error_log)


def test_every_envelope_validates_against_the_real_msghead(
    small_year: Path, shared_reference: Path
) -> None:
    xsd_path = shared_reference / "kith-msghead" / "MsgHead-v1_2.xsd"
    msghead = etree.XMLSchema(etree.parse(str(xsd_path)))
    for path in sorted((small_year / "inbox").iterdir())[:12]:
        tree = etree.parse(str(path))
        content = tree.find("mh:Document/mh:RefDoc/mh:Content", NS)
        for child in list(content):
            content.remove(child)
        assert msghead.validate(tree), (path.name, msghead.error_log)


def test_files_are_cumulative_and_ide_covers_exactly_the_ord(small_year: Path) -> None:
    unit = _registry(small_year)[0]["reshID"]
    seen: set[str] = set()
    for month in range(1, 5):
        ord_root = _payload(small_year / "inbox" / f"{unit}_2026-{month:02d}_ord.xml")
        ide_root = _payload(small_year / "inbox" / f"{unit}_2026-{month:02d}_ide.xml")
        episodes = {e.get("episodeID") for e in ord_root.iter("{*}Episode")}
        assert seen <= episodes, "a later month must still hold the earlier months' episodes"
        seen = episodes
        patients = {o.get("pasientNr") for o in ord_root.iter("{*}Objektholder")}
        idents = {p.get("pid") for p in ide_root.iter("{*}PasientIdent")}
        assert patients == idents
        assert ord_root.get("tilDatoPeriode").startswith(f"2026-{month:02d}")


def test_content_is_realistic(small_year: Path) -> None:
    levels: Counter[str] = Counter()
    waits: list[int] = []
    fnrs: list[str] = []
    for path in (small_year / "inbox").glob("*_2026-04_*.xml"):
        root = _payload(path)
        levels.update(e.get("omsorgsniva") for e in root.iter("{*}Episode"))
        fnrs.extend(p.get("fid") for p in root.iter("{*}PasientIdent"))
        for ref in root.iter("{*}Henvisningsperiode"):
            if ref.get("tjenestestart"):
                start = date.fromisoformat(ref.get("tjenestestart"))
                waits.append((start - date.fromisoformat(ref.get("ansiennitetsdato"))).days)
    total = sum(levels.values())
    assert total > 500
    assert 0.75 < levels["3"] / total < 0.95
    assert 0.04 < levels["1"] / total < 0.2
    assert 40 < sum(waits) / len(waits) < 90
    assert all(identity.is_valid(f, allow_synthetic=True) for f in fnrs)
    assert not any(identity.is_valid(f) for f in fnrs), "synthetic numbers must not pass as real"


def test_defects_are_labelled(defect_year: Path) -> None:
    with open(defect_year / "defects.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    kinds = Counter(r["defect"] for r in rows)
    assert {"schema_violation", "truncated", "test_orgnr", "wrong_version"} <= set(kinds)
    for row in rows:
        path = defect_year / "inbox" / row["file"]
        assert path.exists()
        if row["defect"] == "truncated":
            with pytest.raises(etree.XMLSyntaxError):
                etree.parse(str(path))
        elif row["defect"] == "schema_violation":
            melding = _payload(path)
            mtype = by_namespace(etree.QName(melding).namespace)
            assert mtype is not None
            xsd = mtype.schema()
            assert not xsd.validate(etree.ElementTree(melding))
        elif row["defect"] == "wrong_version":
            melding = _payload(path)
            assert melding.get("versjon") == "57.0.1"
        elif row["defect"] == "duplicate_episode_id":
            ids = [e.get("episodeID") for e in _payload(path).iter("{*}Episode")]
            assert ids.count(row["record"]) == 2
