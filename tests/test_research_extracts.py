"""Research extracts: no fødselsnummer out, per-project pseudonyms, suppression, refusals."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from npr_pipeline import suppression
from npr_pipeline.cli import app
from npr_pipeline.home import Home
from npr_pipeline.periods import Period
from npr_pipeline.production.deliveries import VERSIONS_DDL
from npr_pipeline.production.run import compute_step, exclusion_summary, open_period
from npr_pipeline.provenance import PROVENANCE_COLUMNS
from npr_pipeline.research.dictionary import Sensitivity, dictionary
from npr_pipeline.research.docs import DOC, render
from npr_pipeline.research.pseudonym import (
    ENV_KEY,
    PseudonymKeyError,
    ensure_demo_key,
    key_file,
    load_key,
    pseudonym,
)
from npr_pipeline.research.spec import LEVEL_VARIABLES
from npr_pipeline.store.lake import KEYS, TABLES, part_files
from tests.intake_files import home_copy

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "example-extract.yaml"
runner = CliRunner()


@pytest.fixture(scope="module")
def home(received_small_year: Path, tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The small synthetic year through the real intake (the session's, copied), with a demo
    pseudonym key."""
    home = home_copy(received_small_year, tmp_path_factory.mktemp("research") / "home")
    ensure_demo_key(home)
    return home


def _spec(folder: Path, name: str, **changes: object) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    doc.update(changes)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _npr(home: Home, *args: str):
    return runner.invoke(app, ["--home", str(home.root), *args])


@pytest.fixture(scope="module")
def extracts(home: Home) -> dict[str, Path]:
    """Example spec twice, another project (person level), stays in CSV."""
    specs = home.root / "specs"
    specs.mkdir()
    table = {"name": "persons_by_age", "unit": "person", "rows": "age_band", "columns": "sex"}
    runs = {
        "a1": EXAMPLE,
        "a2": EXAMPLE,
        "b": _spec(
            specs,
            "b",
            project="OTHER-2026-002",
            level="person",
            variables=["person_key", "birth_year", "home_municipality", "first_contact"],
            tables=[{**table, "sum": ["episode_count"]}],
        ),
        "stays": _spec(
            specs,
            "stays",
            level="stay",
            format="csv",
            date_precision="day",
            variables=["person_key", "stay_kind", "stay_start", "drg", "drg_points", "age"],
            tables=[table],
        ),
    }
    outs = {}
    for name, spec in runs.items():
        outs[name] = home.extracts / name
        result = _npr(home, "extract", "--spec", str(spec), "--out", str(outs[name]), "--json")
        assert result.exit_code == 0, result.output
    return outs


def _vault_fids(home: Home) -> set[str]:
    files = sorted(set(part_files(home, "idents").values()))
    assert files, "the vault must hold identities for the scan to mean anything"
    fids = set()
    for path in files:
        fids.update(v for v in pq.read_table(path, columns=["fid"]).column("fid").to_pylist() if v)
    return fids


def _eleven_digit_runs(text: str) -> set[str]:
    """Every 11-digit window of every digit run: a fødselsnummer can hide in a longer number."""
    found = set()
    for match in re.finditer(r"\d{11,}", text):
        run = match.group()
        found.update(run[i : i + 11] for i in range(len(run) - 10))
    return found


def test_no_fodselsnummer_in_any_output_file(home: Home, extracts: dict[str, Path]) -> None:
    fids = _vault_fids(home)
    assert len(fids) > 1000
    sample = sorted(fids)[0]
    assert _eleven_digit_runs(f"x{sample}y 1{sample}") & fids == {sample}, "the scan must work"
    scanned = 0
    for folder in extracts.values():
        for path in sorted(folder.iterdir()):
            texts = [path.read_bytes().decode("latin-1")]
            if path.suffix == ".parquet":
                table = pq.read_table(path)
                texts += [str(v) for column in table.columns for v in column.to_pylist()]
            hits = set().union(*(_eleven_digit_runs(t) for t in texts)) & fids
            assert not hits, f"{path.name} holds fødselsnummer {sorted(hits)[:3]}"
            scanned += 1
    assert scanned >= 10


def test_same_spec_twice_gives_identical_files(extracts: dict[str, Path]) -> None:
    first, second = extracts["a1"], extracts["a2"]
    names = sorted(p.name for p in first.iterdir() if p.name != "manifest.json")
    assert names == sorted(p.name for p in second.iterdir() if p.name != "manifest.json")
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    one, two = (json.loads((f / "manifest.json").read_text()) for f in (first, second))
    assert one["files"] == two["files"] and one["spec_sha256"] == two["spec_sha256"]


def _keys(folder: Path, rows: str = "episodes") -> list[str]:
    return pq.read_table(folder / f"{rows}_2026-T1.parquet").column("person_key").to_pylist()


def test_pseudonyms_same_within_a_project_unrelated_across(
    home: Home, extracts: dict[str, Path]
) -> None:
    a, a_again, b = _keys(extracts["a1"]), _keys(extracts["a2"]), _keys(extracts["b"], "persons")
    assert a == a_again
    assert len(set(a)) == len(b) > 100, "same cohort: as many persons as distinct keys"
    assert not set(a) & set(b), "two projects must not share a single key"
    key = load_key(home)
    fid = sorted(_vault_fids(home))[0]
    assert pseudonym(key, "DEMO-2026-001", fid) != pseudonym(key, "OTHER-2026-002", fid)
    # a person of the cohort: their key in project A is the HMAC of their own number
    con, _ = open_period(home, Period.parse("2026-T1"))
    try:
        fids = [f for (f,) in con.execute("SELECT DISTINCT fid FROM idents ORDER BY 1").fetchall()]
    finally:
        con.close()
    project_a = {pseudonym(key, "DEMO-2026-001", f) for f in fids}
    assert set(a) <= project_a
    assert not set(b) & project_a


def test_manifest_proves_where_rows_came_from(home: Home, extracts: dict[str, Path]) -> None:
    folder = extracts["a1"]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["project"] == "DEMO-2026-001" and manifest["run_by"] and manifest["run_at"]
    period = manifest["periods"][0]
    assert period["submissions"] and all(len(s["checksum"]) >= 32 for s in period["submissions"])
    for entry in manifest["files"]:
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert pq.read_table(folder / entry["file"]).num_rows == entry["rows"]
    assert manifest["suppression"]["threshold"] == 5
    assert manifest["spec"]["variables"][0] == "person_key"


def test_aggregate_table_marks_suppressed_cells(extracts: dict[str, Path]) -> None:
    table = pq.read_table(extracts["a1"] / "episodes_by_rhf_and_care_level_2026-T1.parquet")
    frame = table.to_pandas()
    shown = frame[frame["suppression"] == ""]
    assert (shown["n"].isna() | (shown["n"] == 0) | (shown["n"] >= 5)).all()
    hidden = frame[frame["suppression"] != ""]
    assert hidden["n"].isna().all() and hidden["mean_length_of_stay_days"].isna().all()
    csv_table = (extracts["stays"] / "persons_by_age_2026-T1.csv").read_text(encoding="utf-8")
    assert csv_table.splitlines()[0] == "age_band,sex,n,suppression"


def _hidden_values_possible(values: np.ndarray, hidden: np.ndarray, cell: tuple) -> set[int]:
    """Values near the truth a hidden entry can take given what is published (brute force)."""
    spots = [tuple(int(i) for i in e) for e in zip(*np.nonzero(hidden), strict=True)]
    _, lines = suppression.with_margins(values[:-1, :-1])
    ranges = [range(max(0, int(values[s]) - 2), int(values[s]) + 3) for s in spots]
    possible = set()
    for guess in itertools.product(*ranges):
        trial = values.copy()
        for spot, v in zip(spots, guess, strict=True):
            trial[spot] = v
        if all(sum(trial[e] for e in line[:-1]) == trial[line[-1]] for line in lines):
            possible.add(trial[cell])
    return possible


def test_small_cell_recoverable_from_margins_gets_secondary_suppression() -> None:
    counts = np.array([[2, 6, 7], [6, 8, 9]])
    result = suppression.suppress(counts, threshold=5)
    assert result.primary[0, 0] and result.primary.sum() == 1
    assert result.secondary.any(), "the 2 alone would be row total minus the other cells"
    table, lines = suppression.with_margins(counts)
    for line in lines:
        assert sum(result.hidden[e] for e in line) != 1
    assert not suppression.recoverable(table, lines, result.hidden)
    for cell in zip(*np.nonzero(result.hidden), strict=True):
        assert len(_hidden_values_possible(result.values, result.hidden, cell)) > 1


@pytest.mark.parametrize("seed", range(20))
def test_no_hidden_value_is_recoverable_in_random_tables(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = rng.choice(
        [0, 1, 2, 3, 4, 6, 9, 15, 40], size=(rng.integers(1, 6), rng.integers(1, 6))
    )
    result = suppression.suppress(counts, threshold=5)
    table, lines = suppression.with_margins(counts)
    assert (result.hidden | ~((table > 0) & (table < 5))).all()
    assert not suppression.recoverable(table, lines, result.hidden)


def test_spec_asking_for_a_direct_identifier_is_refused(home: Home, tmp_path: Path) -> None:
    spec = _spec(tmp_path, "fnr", variables=["person_key", "fodselsnummer"])
    result = _npr(home, "extract", "--spec", str(spec), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "'fodselsnummer' is a direct identifier" in result.output
    assert not (tmp_path / "out").exists(), "nothing may be written for a refused spec"


def test_unknown_variable_and_period_outside_the_data_are_refused(
    home: Home, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, "typo", variables=["person_key", "diagnosis"])
    result = _npr(home, "extract", "--spec", str(spec), "--out", str(tmp_path / "o1"))
    assert result.exit_code == 2 and "'diagnosis' is not a variable" in result.output
    spec = _spec(tmp_path, "late", periods=["2026-T3"])
    result = _npr(home, "extract", "--spec", str(spec), "--out", str(tmp_path / "o2"))
    assert result.exit_code == 2 and "2026-T3 is outside the data" in result.output
    spec = _spec(tmp_path, "extra", cohorts={"sex": ["2"]})
    result = _npr(home, "extract", "--spec", str(spec), "--out", str(tmp_path / "o3"))
    assert result.exit_code == 2 and "cohorts" in result.output


def test_key_must_be_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_KEY, raising=False)
    home = Home(root=tmp_path)
    with pytest.raises(PseudonymKeyError, match="no pseudonym key"):
        load_key(home)
    path = ensure_demo_key(home)
    assert path == key_file(home) and (path.stat().st_mode & 0o777) == 0o600
    assert len(load_key(home)) == 64
    os.chmod(path, 0o644)
    with pytest.raises(PseudonymKeyError, match="readable by others"):
        load_key(home)
    monkeypatch.setenv(ENV_KEY, "k" * 40)
    assert load_key(home) == b"k" * 40


def test_dictionary_documents_every_lake_and_delivery_column_once(home: Home) -> None:
    # The warehouse's own tables (registry, ledger, quality results, gate history) are checked
    # against a real warehouse in test_warehouse_comments.py, daily_activity in
    # test_daily_activity.py.
    state = {"registry", "ledger", "quality_results", "quality_results_files",
             "current_submissions", "gate_runs", "message_counts", "daily_activity"}  # fmt: skip
    documented = {(c.table, c.column) for c in dictionary().columns if c.table not in state}
    expected = {(t, name) for t, columns in TABLES.items() for name, _ in KEYS + columns}
    period = Period.parse("2026-T1")
    for step in ("ventetider", "isf", "gjestepasient", "kjernejournal"):
        con, _ = open_period(home, period)
        try:
            tables = compute_step(con, step, period)
            tables[f"{step}_exclusions"] = exclusion_summary(con)
        finally:
            con.close()
        for name, frame in tables.items():
            extra = () if name == "kjernejournal" else ("period", "version")
            columns = getattr(frame, "column_names", None) or list(frame.columns)
            expected |= {(name, c) for c in [*columns, *extra]}
    con = duckdb.connect()
    con.execute(VERSIONS_DDL)
    expected |= {
        ("delivery_versions", c)
        for (c,) in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = 'delivery_versions'"
        ).fetchall()
    }
    expected |= {("delivery_versions", c) for c in PROVENANCE_COLUMNS}
    assert documented == expected
    direct = {
        (c.table, c.column) for c in dictionary().columns if c.sensitivity == "direct_identifier"
    }
    assert direct == {("idents", "fid"), ("kjernejournal", "fodselsnummer")}


def test_every_allowed_variable_is_implemented_and_no_direct_identifier_is() -> None:
    variables = dictionary().variables
    allowed = {n for n, v in variables.items() if v.sensitivity != Sensitivity.direct_identifier}
    assert set().union(*LEVEL_VARIABLES.values()) == allowed


def test_extracts_page_is_generated_from_the_dictionary() -> None:
    assert DOC.read_text(encoding="utf-8") == render(dictionary())
