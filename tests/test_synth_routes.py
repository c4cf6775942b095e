"""npr synth's registry and routes (issue 13): route and financing per unit, private providers,
and the monthly route unchanged byte for byte."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest
from stdnum.no import orgnr as orgnr_check

from npr_pipeline import reference
from npr_pipeline.home import Home
from npr_pipeline.registry import RegistryError, current_registry, import_registry
from npr_pipeline.store.lake import part_files, rows_of
from npr_pipeline.store.ledger import load_records
from npr_pipeline.synth import run as synth_run
from npr_pipeline.synth.run import SynthOptions, expected_tables, run_synth
from npr_pipeline.synth.truth import TABLE_NAMES
from tests.intake_files import prepare_test_home, received_year

# sha256 over (name, bytes) of every inbox file of the run below: the monthly route must not
# change by a byte. Taken again when the ord files gained the 2026 Enhet attributes (enhetstype,
# NACE, avdeling) and units their report-type files; before, when the daily route and the
# private providers were added, it had not changed.
MONTHLY_DIGEST = "53ddf41d52814570316a376fa894bceb798ad44649b3a7b114f6949fb2db5500"
PRIVATE_PAY = {"30", "32", "60"}


def _registry(folder: Path) -> list[dict[str, str]]:
    with open(folder / "registry.csv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _inbox_digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((folder / "inbox").iterdir()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_monthly_route_is_unchanged_byte_for_byte(tmp_path: Path) -> None:
    run_synth(
        SynthOptions(
            out=tmp_path, year=2026, through=2, units=4, seed=5, episodes_per_unit_month=10
        )
    )
    assert _inbox_digest(tmp_path) == MONTHLY_DIGEST
    rows = _registry(tmp_path)
    assert {r["route"] for r in rows} == {"monthly"}
    assert {r["financing"] for r in rows} == {"public"}  # contract and RHF agreement: public
    assert {r["ownership"] for r in rows} == {"public", "private"}


@pytest.fixture(scope="module")
def private_year(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth-private")
    run_synth(
        SynthOptions(
            out=out, year=2026, through=1, units=2, seed=3, episodes_per_unit_month=20,
            private_units=20,
        )
    )  # fmt: skip
    return out


def test_private_providers_in_the_registry(private_year: Path, tmp_path: Path) -> None:
    rows = _registry(private_year)
    private = [r for r in rows if r["unit_type"] == "private_provider"]
    assert len(private) == 20 and len(rows) == 22
    for row in private:
        assert (row["ownership"], row["financing"], row["rhf"], row["isf_agreement"]) == (
            "private",
            "private",
            "",  # no RHF agreement: no treating region for the settlement (RULES.md)
            "false",
        )
        assert orgnr_check.is_valid(row["orgnr"])
    assert len({r["reshID"] for r in rows}) == len({r["orgnr"] for r in rows}) == 22
    bundled = set(reference.units()["reshID"])
    assert not {r["reshID"] for r in private} & bundled
    home = prepare_test_home(Home(root=tmp_path / "home"), private_year / "registry.csv")
    registry = current_registry(home)
    assert set(registry.loc[registry["reshID"].isin([r["reshID"] for r in private]), "route"]) == {
        "monthly"
    }
    # a second version (a unit moves to the daily route) is a new version, the first kept
    text = (private_year / "registry.csv").read_text(encoding="utf-8")
    moved = tmp_path / "registry-daily.csv"
    moved.write_text(text.replace(",monthly\n", ",daily\n", 1), encoding="utf-8")
    result = import_registry(home, moved)
    assert (result.version, result.modified) == (2, 1)
    assert (current_registry(home)["route"] == "daily").sum() == 1


def test_an_unknown_route_is_refused(private_year: Path, tmp_path: Path) -> None:
    text = (private_year / "registry.csv").read_text(encoding="utf-8")
    bad = tmp_path / "registry-bad.csv"
    bad.write_text(text.replace(",monthly\n", ",weekly\n", 1), encoding="utf-8")
    home = prepare_test_home(Home(root=tmp_path / "home"))
    with pytest.raises(RegistryError, match="unknown route weekly"):
        import_registry(home, bad)


def _payers(options: SynthOptions, resh: set[str]) -> tuple[Counter, int]:
    """Debitor codes of the units' generated year, and how many units had no episode."""
    payers: Counter = Counter()
    idle = 0
    for task in synth_run._tasks(synth_run.select_units(options), options):
        if task.unit.resh not in resh:
            continue
        year = synth_run._unit_year(task)
        episodes = [e.debitor for p in year.patients for e in p.episodes]
        payers.update(episodes)
        idle += not episodes
    return payers, idle


def test_payers_mix_private_and_public(private_year: Path) -> None:
    """Private providers are mostly paid privately (30, 32, 60), some publicly (1, 70);
    public units have some privately paid activity too; some tiny providers have none."""
    rows = _registry(private_year)
    options = SynthOptions(
        out=private_year, year=2026, through=3, units=2, seed=3, episodes_per_unit_month=20,
        private_units=20,
    )  # fmt: skip
    private, idle = _payers(options, {r["reshID"] for r in rows if r["financing"] == "private"})
    total = sum(private.values())
    assert total > 30
    assert 0.6 < sum(private[c] for c in PRIVATE_PAY) / total < 0.97
    assert private["1"] + private["70"] > 0
    assert idle >= 1
    public, _ = _payers(options, {r["reshID"] for r in rows if r["financing"] == "public"})
    assert public["30"] > 0 and public["1"] > 0.9 * sum(public.values())


def test_mixed_route_splits_units_and_keeps_monthly_files(tmp_path: Path) -> None:
    """A share of the units on the daily route; the monthly units' files are exactly those of
    an all-monthly run (the same truth), the daily units send only daily types."""
    base = {"year": 2026, "through": 1, "units": 6, "seed": 4, "episodes_per_unit_month": 10}
    run_synth(SynthOptions(out=tmp_path / "m", **base))
    run_synth(SynthOptions(out=tmp_path / "x", route="mixed", daily_share=0.5, **base))
    routes = {r["reshID"]: r["route"] for r in _registry(tmp_path / "x")}
    assert Counter(routes.values()) == {"daily": 3, "monthly": 3}
    monthly = {p.name: p.read_bytes() for p in (tmp_path / "m" / "inbox").iterdir()}
    for path in (tmp_path / "x" / "inbox").iterdir():
        resh, _, kind = path.stem.split("_")[:3]
        if routes[resh] == "monthly":
            assert path.read_bytes() == monthly[path.name]
        else:
            assert kind in {"enhet", "pasient", "ident", "henvisning", "kontakt", "avslutning"}
    assert {p.name.split("_")[0] for p in (tmp_path / "x" / "inbox").iterdir()} == set(routes)


def test_the_truth_is_what_the_monthly_route_puts_in_the_lake(tmp_path: Path) -> None:
    """``expected_tables`` through month M is exactly the lake rows of each unit's month-M
    ord and ide files after intake (lineage aside): the truth the daily route must net out to."""
    options = SynthOptions(
        out=tmp_path / "synth", year=2026, through=2, units=3, seed=2, episodes_per_unit_month=10
    )
    run_synth(options)
    home = received_year(tmp_path / "home", options.out)
    month_of = {
        r.submission_id: int(Path(r.file).stem.split("_")[1][5:]) for r in load_records(home)
    }
    for month in (1, 2):
        expected = expected_tables(options, month)
        for table in TABLE_NAMES:
            files = part_files(home, table)
            chosen = [(sid, path) for sid, path in files.items() if month_of[sid] == month]
            assert len(chosen) == 3, table
            lake = pa.concat_tables(rows_of(path, sid) for sid, path in chosen)
            lake = lake.drop_columns(["submission_id"])
            if "line" in lake.column_names:
                lake = lake.drop_columns(["line"])
            assert _sorted(lake.to_pylist()) == _sorted(expected[table].to_pylist()), table
            assert len(lake) > 0


def _sorted(rows: list[dict]) -> list[str]:
    return sorted(repr(sorted(r.items())) for r in rows)


@pytest.mark.parametrize(
    "args",
    [
        ["--route", "weekly"],
        ["--route", "mixed", "--daily-share", "1.5"],
        ["--private-units", "-1"],
    ],
)
def test_the_cli_refuses_bad_route_options(tmp_path: Path, args: list[str]) -> None:
    from typer.testing import CliRunner

    from npr_pipeline.cli import app

    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "registry.csv").exists()
