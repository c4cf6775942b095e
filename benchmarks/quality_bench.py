"""Quality speed (issue 4 "Speed"): the GX suites against hand-written DuckDB SQL, one run.

    python -m benchmarks.quality_bench [--units 2000] [--through 2026-04] [--episodes 300]

A national month: every active unit's cumulative ord and ide of April, the month that closes
the first tertial (300 episodes per unit-month on average; the year up to it is generated once
into ``.bench/quality/`` and reused; ``--through 2026-01`` gives January, whose one-month files
are the smallest of the year). Each run intakes the month's files into a fresh HOME, then
measures, each in its own child process under GNU ``/usr/bin/time`` (``intake_bench.measure``:
wall time, ``ru_maxrss``, sampled tree PSS):

- ``gx full``: what ``core/production_input`` does per period (``check_period``): the input
  snapshot (the period's tables materialised once, which the four steps then read: its own
  phase, counted as production input, not as quality), ``run_suites`` over every table with GX
  Data Docs, the results page, ``input_quality``;
- ``gx 11``: ``run_suites`` with only the 11 typical episode checks (no Data Docs), the
  like-for-like case of the issue's figure;
- ``sql engine full`` / ``sql engine 11``: ``sql_engine.run_checks`` on the same checks;
- ``hand-written 11``: one hand-written DuckDB query counting the same 11 checks at once;
- ``... scaled``: GX and the hand-written query on the period's episodes repeated to about
  5 M rows (the issue's scale), to show how the ratio depends on the data size;
- ``npr intake`` and ``produce`` of each of the four steps: the rest of intake-to-delivery.

GX, the SQL engine, the hand-written query and the four steps all read the snapshot ``gx full``
built, so they read the same tables; the snapshot is paid once per run, reported on its own
and counted in intake-to-delivery as production input. The children report their own time
without interpreter start and imports ("work s"), which the ratios use, as the issue's figures
did; wall times are shown too. Every engine's unexpected counts for the 11 checks are compared:
a faster engine that counts differently proves nothing. Targets are PASS or MISS, the exit code
is 0 either way: this is a measurement, not a gate.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from benchmarks.intake_bench import (
    CACHE,
    GIB,
    MB,
    TIME,
    Measurement,
    Scale,
    ensure_dataset,
    machine,
    measure,
    parse_with_month,
)
from npr_pipeline.production import STEPS

QUALITY_CACHE = CACHE / "quality"
MIB = 1 << 20
TYPICAL = (
    "episode_dates_in_order",
    "episode_not_before_1900",
    "episode_id_unique",
    "care_level_in_code_list",
    "urgency_in_code_list",
    "contact_type_in_code_list",
    "debitor_in_code_list",
    "episode_fagomrade_in_code_list",
    "episode_municipality_valid",
    "inpatient_stay_length_plausible",
    "outpatient_contact_same_day",
)
"""The issue's "11 typical expectations": every single-table check of the episodes file."""

REPEATS = 3
"""Runs of each side of the GX / hand-written ratio: single runs of a few seconds moved by a
third between two runs of the same code on this shared machine (2.5 and 3.6)."""
RATIO_KINDS = ("gx-11", "handwritten", "gx-11-scaled", "handwritten-scaled")

ISSUE_ROWS = 5_000_000
"""The issue's scale for GX against hand-written SQL: the scaled contenders repeat the period's
episodes to about this many rows."""

TARGET_GX_VS_SQL = 3.0
TARGET_PEAK_GIB = 2.0
TARGET_QUALITY_SHARE = 0.25

HANDWRITTEN = """
WITH e AS (
    SELECT *, count(*) OVER (PARTITION BY submission_id, "episodeID") AS copies
    FROM episodes
)
SELECT
    count(*) AS element_count,
    count_if(utDatoTid < innDatoTid) AS episode_dates_in_order,
    count_if(innDatoTid < TIMESTAMP '1900-01-01') AS episode_not_before_1900,
    count_if(copies > 1 AND submission_id IS NOT NULL AND "episodeID" IS NOT NULL)
        AS episode_id_unique,
    count_if(omsorgsniva NOT IN (SELECT code FROM ref_code_list WHERE list = 'omsorgsniva'))
        AS care_level_in_code_list,
    count_if(innmateHast NOT IN (SELECT code FROM ref_code_list WHERE list = 'innmateHast'))
        AS urgency_in_code_list,
    count_if(kontaktType NOT IN (SELECT code FROM ref_code_list WHERE list = 'kontaktType'))
        AS contact_type_in_code_list,
    count_if(debitor NOT IN (SELECT code FROM ref_code_list WHERE list = 'debitor'))
        AS debitor_in_code_list,
    count_if(fagomrade NOT IN (SELECT code FROM ref_code_list WHERE list = 'fagomrade'))
        AS episode_fagomrade_in_code_list,
    count_if(komNrHjem NOT IN (SELECT komnr FROM ref_municipality))
        AS episode_municipality_valid,
    count_if(omsorgsniva = '1' AND date_diff('day', innDatoTid, utDatoTid) > 365)
        AS inpatient_stay_length_plausible,
    count_if(omsorgsniva IN ('2', '3') AND CAST(utDatoTid AS DATE) <> CAST(innDatoTid AS DATE))
        AS outpatient_contact_same_day
FROM e
"""
"""The 11 checks as one scan, written the way a person writes them: NULLs compare as unknown
and are not counted (as in the catalogue), code lists come from the same ``ref_*`` tables."""


# -- the children (``python -m benchmarks.quality_bench child KIND HOME PERIOD``) -------------


def _child(kind: str, home_dir: str, period_text: str, factor: str = "1") -> dict[str, object]:
    """One contender's work, timed by phase after its imports; GX's chatter kept off stdout."""
    from npr_pipeline.home import Home
    from npr_pipeline.periods import Period

    home, period = Home.resolve(home_dir), Period.parse(period_text)
    scaled = kind.endswith("-scaled")
    with contextlib.redirect_stdout(sys.stderr):
        if kind == "gx-full":
            return _child_gx_full(home, period)
        if kind.startswith("gx-11"):
            return _child_gx_11(_database(home, period, scaled))
        if kind.startswith("sql-engine"):
            return _child_sql_engine(_database(home, period), full=kind == "sql-engine-full")
        if kind.startswith("handwritten"):
            return _child_handwritten(_database(home, period, scaled))
        if kind == "scale":
            return _child_scale(home, period, int(factor))
        if kind.startswith("produce-"):
            return _child_produce(home, period, kind.removeprefix("produce-"))
    raise ValueError(f"unknown child {kind!r}")


def _database(home, period, scaled: bool = False) -> Path:
    """The period's input snapshot ``gx-full`` built, or its scaled copy."""
    from npr_pipeline.production.snapshot import snapshot_path

    path = snapshot_path(home, period)
    return path.with_name(f"{path.stem}-scaled.duckdb") if scaled else path


def _checks(full: bool) -> list:
    """All checks GX can run (what the period suite holds), or the 11 typical ones."""
    from npr_pipeline.quality.catalogue import by_id, load_catalogue
    from npr_pipeline.quality.gx_suite import NOT_IN_GX

    if full:
        return [c for c in load_catalogue() if c.expectation not in NOT_IN_GX]
    return [by_id(check_id) for check_id in TYPICAL]


def _gx_outcome(results: list) -> dict[str, object]:
    errors = sorted({r.check_id for r in results if r.error})
    counts = {r.check_id: r.unexpected_count for r in results}
    return {"checks": len(results), "counts": counts, "errors": errors}


def _child_gx_full(home, period) -> dict[str, object]:
    """What ``core/production_input`` does for one period (``check_period``), phase by phase."""
    from npr_pipeline.production.input_checks import check_period
    from npr_pipeline.settings import load_settings

    outcome = check_period(home, period, "bench", load_settings(home).max_excluded_share)
    if not outcome.passed:
        raise SystemExit(f"the bench month failed its blocking checks: {outcome.failed_errors}")
    return {"phases": outcome.seconds} | _gx_outcome(outcome.results)


def _child_gx_11(db: Path) -> dict[str, object]:
    """GX on the 11 typical episode checks, over the snapshot ``gx-full`` built."""
    from npr_pipeline.quality.gx_suite import run_suites

    checks = _checks(full=False)
    started = time.perf_counter()
    results = run_suites(db, checks, ["episodes"])
    return {"phases": {"checks": time.perf_counter() - started}} | _gx_outcome(results)


def _child_sql_engine(db: Path, full: bool) -> dict[str, object]:
    """The per-submission engine, run once over the period's tables."""
    import duckdb

    from npr_pipeline.quality.sql_engine import run_checks

    checks = _checks(full)
    started = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    results, _ = run_checks(con, checks, allow_synthetic_fnr=True)
    checked = time.perf_counter()
    con.close()
    counts = results.groupby("check_id")["unexpected_count"].sum()
    errors = sorted(results.loc[results["status"] == "error", "check_id"].unique())
    return {
        "phases": {"checks": checked - started},
        "checks": len(checks),
        "counts": {k: int(v) for k, v in counts.items()},
        "errors": errors,
    }


def _child_handwritten(db: Path) -> dict[str, object]:
    """The one hand-written query over the same tables."""
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(db), read_only=True)
    cursor = con.execute(HANDWRITTEN)
    row = cursor.fetchall()[0]
    checked = time.perf_counter()
    names = [d[0] for d in cursor.description]
    con.close()
    counts = {n: int(v) for n, v in zip(names, row, strict=True) if n != "element_count"}
    return {
        "phases": {"checks": checked - started},
        "checks": len(counts),
        "counts": counts,
        "errors": [],
        "rows": int(row[0]),
    }


def _child_scale(home, period, factor: int) -> dict[str, object]:
    """The scaled database: the period's episodes ``factor`` times (distinct submission ids, so
    the uniqueness check sees no false duplicates) and the code lists the 11 checks join."""
    import duckdb

    source, target = _database(home, period), _database(home, period, scaled=True)
    target.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(target))
    try:
        con.execute(f"ATTACH '{source}' AS period (READ_ONLY)")
        con.execute(
            "CREATE TABLE episodes AS SELECT * REPLACE (submission_id || '-' || copy AS "
            f"submission_id) FROM period.episodes, range({factor}) AS copies(copy)"
        )
        for table in ("ref_code_list", "ref_municipality"):
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM period.{table}")
        rows = con.execute("SELECT count(*) FROM episodes").fetchall()[0][0]
    finally:
        con.close()
    return {"phases": {"build": time.perf_counter() - started}, "rows": int(rows)}


def _child_produce(home, period, step: str) -> dict[str, object]:
    """One production step as ``out/<step>`` runs it: a new delivery version."""
    from npr_pipeline.production.run import produce

    started = time.perf_counter()
    result = produce(home, period, step, f"bench-{step}")
    return {"phases": {"produce": time.perf_counter() - started}, "rows": result.rows}


# -- the harness ------------------------------------------------------------------------------


def run_quality_bench(
    units: int = 2000, month: int = 4, episodes: float = 300.0, seed: int = 1
) -> dict[str, object]:
    """Generate (or reuse) the year up to the month, intake the month's deliveries, measure
    every contender; the whole record.

    The month's deliveries are every unit's cumulative ord and ide of that month (what a
    monthly run reads); the period is the month itself (``2026-MM``, year to date).
    """
    if shutil.which(TIME) is None:
        sys.exit(f"needs {TIME} (Debian: apt-get install time)")
    scale = Scale(units, month, episodes, seed)
    dataset = ensure_dataset(scale, QUALITY_CACHE)
    period = f"2026-{month:02d}"
    work = Path(tempfile.mkdtemp(prefix="work-", dir=QUALITY_CACHE))
    try:
        inbox, files = _month_inbox(dataset, period, work / "inbox")
        home = work / "home"
        home.mkdir()
        (home / "settings.json").write_text(json.dumps({"allow_synthetic_fnr": True}) + "\n")
        npr = Path(sys.executable).with_name("npr")
        subprocess.run(
            [npr, "--home", home, "registry", "import", dataset.registry],
            check=True,
            capture_output=True,
        )
        _say(f"intake of {len(files)} files ...")
        intake = measure(
            "npr intake", "month", [npr, "--home", home, "intake", inbox, "--json"],
            files, True,
        )  # fmt: skip
        _check_ok(intake)
        intake.output["quality_s"] = _quality_in_intake(home, time.time())
        measurements = {"intake": intake}
        contenders = ["gx-full", "gx-11", "sql-engine-full", "sql-engine-11", "handwritten"]
        for kind in contenders:
            measurements[kind] = _contender(kind, home, period)
        rows = int(measurements["handwritten"].output["rows"])
        factor = max(1, round(ISSUE_ROWS / max(rows, 1)))
        for kind in ["scale", "gx-11-scaled", "handwritten-scaled"]:
            measurements[kind] = _contender(kind, home, period, factor)
        for kind in RATIO_KINDS:  # the ratio's two sides, again: the median of REPEATS runs
            runs = [measurements[kind]]
            runs += [
                _contender(kind, home, period, factor if kind.endswith("-scaled") else 1)
                for _ in range(REPEATS - 1)
            ]
            measurements[kind] = _median(runs)
        for step in STEPS:
            measurements[f"produce-{step}"] = _contender(f"produce-{step}", home, period)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _record(dataset, period, files, measurements, factor)


def _median(runs: list[Measurement]) -> Measurement:
    """The run with the median work time, carrying every run's work time."""
    chosen = sorted(runs, key=_work)[len(runs) // 2]
    chosen.output["repeats_work_s"] = [round(_work(m), 3) for m in runs]
    return chosen


def _month_inbox(dataset, period: str, inbox: Path) -> tuple[Path, list[Path]]:
    """An inbox of links to the month's files only (the data set holds every month up to it)."""
    inbox.mkdir()
    files = [p for p in dataset.files if f"_{period}_" in p.name]
    for path in files:
        (inbox / path.name).symlink_to(path)
    return inbox, files


def _contender(kind: str, home: Path, period: str, factor: int = 1) -> Measurement:
    _say(f"{kind} ...")
    argv = [sys.executable, "-m", "benchmarks.quality_bench", "child", kind, home, period]
    return _check_ok(measure(kind, "month", [*argv, str(factor)], [], True))


def _quality_in_intake(home: Path, ended: float) -> float:
    """Seconds intake spent after its last ledger record: the per-delivery content checks.

    Intake commits every file (ledger record, XPR_VAL) and only then runs the SQL engine on the
    new deliveries (XPR_ERR, violations), serially in its main process; the ledger's last
    commit (the state file's modification time) therefore marks where that phase starts,
    without touching intake's code.
    """
    last_commit = (home / "state.duckdb").stat().st_mtime
    return ended - last_commit


def _say(text: str) -> None:
    print(f"  {datetime.now():%H:%M:%S} {text}", flush=True)


def _check_ok(m: Measurement) -> Measurement:
    """A failed child is no figure: stop with its error rather than print a ratio of it."""
    if not m.ok:
        sys.exit(f"{m.name} failed: {m.note}")
    return m


def _work(m: Measurement) -> float:
    """Seconds of work inside a child (all its phases), without interpreter start and imports;
    for intake, a command of its own, its wall time."""
    phases = m.output.get("phases")
    return sum(float(v) for v in phases.values()) if phases else m.seconds


def _verdict(value: float, limit: float) -> str:
    return "PASS" if value < limit else "MISS"


def _record(
    dataset, period: str, files: list[Path], ms: dict[str, Measurement], factor: int
) -> dict[str, object]:
    """Figures, agreement of the engines' counts, and the three targets."""
    intake = ms["intake"]
    hand, gx11, gx_full = ms["handwritten"], ms["gx-11"], ms["gx-full"]
    # Work seconds for what runs inside the already started Dagster process; intake's wall
    # time, because it is a command of its own (its content checks are part of it).
    produce_s = sum(_work(ms[f"produce-{s}"]) for s in STEPS)
    phases = gx_full.output["phases"]
    snapshot_s = float(phases["snapshot"])
    gx_s = _work(gx_full) - snapshot_s
    in_intake = float(intake.output["quality_s"])
    total = intake.seconds + snapshot_s + gx_s + produce_s
    peak = max(ms[k].peak for k in ("gx-full", "gx-11", "sql-engine-full", "handwritten"))
    rows = [
        ("GX / hand-written SQL, same 11 checks (work s)", _work(gx11) / _work(hand),
         TARGET_GX_VS_SQL),
        ("quality peak memory (GiB)", peak / GIB, TARGET_PEAK_GIB),
        ("quality share of intake-to-delivery (intake's checks + GX per period)",
         (in_intake + gx_s) / total, TARGET_QUALITY_SHARE),
    ]  # fmt: skip
    targets = [
        {"target": name, "value": value, "limit": f"< {limit}", "verdict": _verdict(value, limit)}
        for name, value, limit in rows
    ]
    counts = {k: ms[k].output["counts"] for k in ("handwritten", "gx-11", "sql-engine-11")}
    scaled_counts = {k: ms[f"{k}-scaled"].output["counts"] for k in ("handwritten", "gx-11")}
    disagree = {
        check: {k: c.get(check) for k, c in group.items()}
        for group in (counts, scaled_counts)
        for check in TYPICAL
        if len({c.get(check) for c in group.values()}) > 1
    }
    gx_scaled, hand_scaled = ms["gx-11-scaled"], ms["handwritten-scaled"]
    return {
        "machine": machine(),
        "scale": dataset.scale.__dict__ | {"key": dataset.scale.key},
        "period": period,
        "data": {
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "episodes_in_period_view": hand.output["rows"],
            "accepted": intake.output["accepted"],
            "rejected": intake.output["rejected"],
            "episodes_read": intake.output["episodes"],
        },
        "measurements": {k: m.as_json() | {"work_s": _work(m)} for k, m in ms.items()},
        "gx_full_vs_handwritten": float(phases["gx_suites"]) / _work(hand),
        "snapshot_s": snapshot_s,
        "share_with_snapshot_as_quality": (in_intake + gx_s + snapshot_s) / total,
        "scaled": {
            "factor": factor,
            "rows": hand_scaled.output["rows"],
            "gx_11_s": _work(gx_scaled),
            "handwritten_s": _work(hand_scaled),
            "gx_vs_handwritten": _work(gx_scaled) / _work(hand_scaled),
        },
        "intake_to_delivery_s": {
            "intake": intake.seconds,
            "of which content checks": in_intake,
            "input snapshot (read by checks and steps)": snapshot_s,
            "quality per period (GX suites, page, shares)": gx_s,
            "produce (4 steps, from the snapshot)": produce_s,
            "total": total,
        },
        "counts": counts["handwritten"],
        "counts_disagree": disagree,
        "targets": targets,
    }


def _print(record: dict) -> None:
    """The record as plain tables, for the log and for docs/benchmarks.md."""
    data = record["data"]
    print(
        f"\nperiod {record['period']}: {data['files']} files, {data['bytes'] / MB:.1f} MB, "
        f"{data['episodes_read']} episodes read, {data['episodes_in_period_view']} episodes in "
        f"the period view ({data['accepted']} files accepted, {data['rejected']} rejected)"
    )
    print(f"\n{'contender':21} {'checks':>6} {'wall s':>8} {'work s':>8} {'max RSS MiB':>12}"
          f" {'tree PSS MiB':>13} {'load':>5}  phases")  # fmt: skip
    for name, m in record["measurements"].items():
        output = m["output"]
        phases = ", ".join(f"{k} {v:.1f}" for k, v in output.get("phases", {}).items())
        if "repeats_work_s" in output:
            phases += f" (median of {output['repeats_work_s']})"
        checks = str(output.get("checks", "")) if "checks" in output else "-"
        print(
            f"{name:21} {checks:>6} {m['seconds']:8.1f} {m['work_s']:8.1f} "
            f"{m['max_rss'] / MIB:12.0f} {m['tree_pss'] / MIB:13.0f} {m['load']:5.1f}  {phases}"
        )
    flow = record["intake_to_delivery_s"]
    print("\nintake to delivery: " + ", ".join(f"{k} {v:.1f} s" for k, v in flow.items()))
    print(f"GX full suite / hand-written 11 (work s): {record['gx_full_vs_handwritten']:.1f}")
    print(
        f"the period's input snapshot (once per run): {record['snapshot_s']:.1f} s; the quality "
        f"share if it counted as quality: {record['share_with_snapshot_as_quality']:.3f}"
    )
    scaled = record["scaled"]
    print(
        f"at {scaled['rows']} episodes (x{scaled['factor']}): GX 11 {scaled['gx_11_s']:.1f} s, "
        f"hand-written {scaled['handwritten_s']:.1f} s, "
        f"GX / hand-written {scaled['gx_vs_handwritten']:.1f}"
    )
    print(f"unexpected counts (hand-written): {record['counts']}")
    if record["counts_disagree"]:
        print(f"ENGINES DISAGREE: {record['counts_disagree']}")
    else:
        print("hand-written, GX and the SQL engine agree on all 11 counts (also scaled)")
    print("\ntargets (a MISS is a finding, not a failure: exit code stays 0)")
    for t in record["targets"]:
        print(f"  {t['verdict']:4}  {t['target']}: {t['value']:.3f} (needed {t['limit']})")


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quality_bench", description=__doc__)
    parser.add_argument("--units", type=int, default=2000, help="2000: every active unit")
    parser.add_argument("--through", default="2026-04", help="the month to measure, YYYY-MM")
    parser.add_argument("--episodes", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    return parse_with_month(parser, argv)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m benchmarks.quality_bench``: measure, print, store the JSON record."""
    args = _args(argv)
    QUALITY_CACHE.mkdir(parents=True, exist_ok=True)
    print(f"quality benchmark, data set in {QUALITY_CACHE} (generated once, then reused)")
    record = run_quality_bench(args.units, args.month, args.episodes, args.seed)
    _print(record)
    path = QUALITY_CACHE / f"results-{datetime.now():%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"results: {path}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        print(json.dumps(_child(*sys.argv[2:6]), default=str))
    else:
        main()
