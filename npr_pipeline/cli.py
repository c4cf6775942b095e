"""The ``npr`` command: the operator contract of CONTRACT.md.

Exit codes: 0 done (rejected submissions are a result, not a failure), 2 bad usage or bad input
to the command itself, 3 refused by a rule, 1 internal error. ``--json`` prints one JSON document.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from npr_pipeline.home import Home
from npr_pipeline.registry import NoRegistry, RegistryError, current_version, import_registry
from npr_pipeline.settings import HomeEnvironmentError

app = typer.Typer(help="npr-pipeline: the production platform of Norsk pasientregister.")
registry_app = typer.Typer(help="The unit registry.")
app.add_typer(registry_app, name="registry")
console = Console(stderr=True)
out = Console()

EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3


class State:
    """Options of the top-level callback, shared with the commands."""

    home: Home = Home.resolve()


@app.callback()
def main(
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="NPR_HOME", help="Runtime state folder (default data/home)."),
    ] = None,
) -> None:
    """Set HOME for every command."""
    State.home = Home.resolve(home)


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}", soft_wrap=True)  # one line, never wrapped
    return typer.Exit(code)


def _require_registry(home: Home) -> None:
    """Intake and production refuse (exit 3) until a registry has been imported, and in a
    production HOME whose settings allow synthetic fødselsnummer."""
    from npr_pipeline.settings import load_settings

    try:
        current_version(home)
        load_settings(home)
    except (NoRegistry, HomeEnvironmentError) as exc:
        raise _fail(str(exc), EXIT_REFUSED) from exc


def _progress(on: Console | None = None) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=on or console,
        transient=False,
    )


@app.command()
def synth(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for registry.csv and inbox/.")],
    year: Annotated[int, typer.Option(help="Data year.")] = 2026,
    through: Annotated[str, typer.Option(help="Last month, YYYY-MM.")] = "2026-04",
    units: Annotated[int | None, typer.Option(help="Representative subset of N units.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 1,
    episodes_per_unit_month: Annotated[
        float, typer.Option(help="National mean episodes per unit and month (size-weighted).")
    ] = 300.0,
    defects: Annotated[float, typer.Option(help="Share of files with a labelled fault.")] = 0.0,
) -> None:
    """Write a synthetic reporting year: registry.csv, inbox/ and (with --defects) defects.csv."""
    from npr_pipeline import reference
    from npr_pipeline.synth.run import SynthOptions, run_synth, select_units

    match = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", through)
    if not match or int(match[1]) != year:
        raise _fail(f"--through must be a month of {year} as YYYY-MM, got {through!r}")
    if not 0 <= defects <= 1 or (units is not None and units < 1):
        raise _fail("--defects must be within 0..1 and --units at least 1")
    try:
        reference.message_version(year)
    except (KeyError, ValueError) as exc:
        raise _fail(f"no message version is defined for data year {year}") from exc
    options = SynthOptions(
        out=out_dir,
        year=year,
        through=int(match[2]),
        units=units,
        seed=seed,
        episodes_per_unit_month=episodes_per_unit_month,
        defects=defects,
    )
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task("synth units", total=len(select_units(options)))
        result = run_synth(options, progress=lambda n: progress.advance(task, n))
    table = Table(title=f"npr synth {year} through {through}")
    for column in ("units", "files", "episodes", "MB", "defects", "seconds"):
        table.add_column(column, justify="right")
    table.add_row(
        str(result.units),
        str(result.files),
        str(result.episodes),
        f"{result.bytes / 1e6:.1f}",
        str(len(result.defects)),
        f"{time.perf_counter() - started:.1f}",
    )
    console.print(table)
    console.print(f"written to {out_dir}")


@registry_app.command("import")
def registry_import(
    file: Annotated[Path, typer.Argument(help="Registry CSV (as npr synth writes it).")],
) -> None:
    """Load or update the unit registry; each change becomes a new version."""
    if not file.is_file():
        raise _fail(f"no such file: {file}")
    home = State.home.ensure()
    try:
        result = import_registry(home, file)
    except RegistryError as exc:
        raise _fail(str(exc)) from exc
    except HomeEnvironmentError as exc:  # a synthetic registry in a production HOME
        raise _fail(str(exc), EXIT_REFUSED) from exc
    if result.changed:
        console.print(
            f"registry version {result.version}: {result.units} units "
            f"(+{result.added} -{result.removed} ~{result.modified})"
        )
    else:
        console.print(f"registry unchanged (version {result.version}, {result.units} units)")


@app.command()
def intake(
    inbox: Annotated[Path, typer.Argument(help="Folder of received files.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    workers: Annotated[int, typer.Option(help="Parallel readers (both cores by default).")] = 2,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for another intake of this HOME to finish.")
    ] = 600.0,
) -> None:
    """Receive every file in INBOX: archive, gate, validate, parse into the lake, report.

    Exit 1 if any file failed on the register's side (listed as ``failed``: the next intake
    retries it), 3 if another intake held this HOME for longer than ``--wait`` seconds.
    """
    from npr_pipeline.intake.run import intake_directory
    from npr_pipeline.locking import HomeLocked

    if not inbox.is_dir():
        raise _fail(f"no such folder: {inbox}")
    home = State.home.ensure()
    _require_registry(home)
    files = sum(1 for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))

    def waiting(holder: str) -> None:
        console.print(f"waiting up to {wait:.0f} s for the intake of {holder}")

    try:
        with _progress() as progress:
            task = progress.add_task("intake files", total=files)
            summary = intake_directory(
                home,
                inbox,
                workers=workers,
                progress=lambda n: progress.advance(task, n),
                wait=wait,
                on_wait=waiting,
            )
    except HomeLocked as exc:
        raise _fail(str(exc), EXIT_REFUSED) from None
    if as_json:
        out.print_json(json.dumps(summary.as_json(), ensure_ascii=False))
    else:
        _print_intake(summary)
    if summary.count("failed"):
        raise _fail(f"{summary.count('failed')} file(s) failed; the next intake retries them", 1)


def _print_intake(summary) -> None:
    doc = summary.as_json()
    table = Table(title="npr intake")
    for column in ("files", "accepted", "rejected", "duplicates", "test", "episodes", "MB", "s"):
        table.add_column(column, justify="right")
    table.add_row(
        *(str(doc[k]) for k in ("files", "accepted", "rejected", "duplicates", "test", "episodes")),
        f"{summary.bytes / 1e6:.1f}",
        f"{summary.seconds:.1f}",
    )
    out.print(table)
    if doc["rejected_by_reason"]:
        reasons = Table(title="rejected by reason")
        reasons.add_column("reason")
        reasons.add_column("files", justify="right")
        for code, count in doc["rejected_by_reason"].items():
            reasons.add_row(code, str(count))
        out.print(reasons)


@app.command()
def feedback(
    submission_id: Annotated[str, typer.Argument(help="Submission id (from npr intake).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Where a submission's XPR_VAL / XPR_ERR reports are, and what they found."""
    from npr_pipeline.feedback.reports import read_report_summary
    from npr_pipeline.intake.ledger import read_record

    home = State.home
    if not re.fullmatch(r"[0-9a-f]{16}", submission_id):
        raise _fail(f"not a submission id: {submission_id!r} (16 hex characters)")
    record = read_record(home, submission_id)
    if record is None:
        raise _fail(f"no submission {submission_id} in {home.ledger}")
    folder = home.feedback / submission_id
    reports = {
        kind: {fmt: str(folder / f"{kind}.{fmt}") for fmt in ("xml", "html", "csv")}
        for kind in ("XPR_VAL", "XPR_ERR")
        if (folder / f"{kind}.xml").exists()
    }
    findings = [
        {
            "rule": r["code"],
            "severity": r.get("severity", "error"),
            "record": {k: r[k] for k in ("line", "element") if k in r},
            "message": r["message"],
        }
        for r in record.reasons
    ]
    doc = {
        "submission_id": submission_id,
        "file": record.file,
        "status": record.status,
        "unit": record.unit,
        "message_type": record.message_type,
        "reports": reports,
        "findings": findings,
        "summary": read_report_summary(folder) if folder.exists() else {},
    }
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False, default=str))
        return
    out.print(f"[bold]{record.file}[/bold]  {submission_id}  status: [bold]{record.status}[/bold]")
    for kind, paths in reports.items():
        out.print(f"{kind}: {paths['html']}")
    for finding in findings[:20]:
        out.print(f"  {finding['severity']:7} {finding['rule']:22} {finding['message']}")
    if len(findings) > 20:
        out.print(f"  ... {len(findings) - 20} more in the reports")


def _period(text: str):
    from npr_pipeline.periods import Period

    try:
        return Period.parse(text)
    except ValueError as exc:
        raise _fail(str(exc)) from exc


def _steps(chosen: list[str] | None) -> list[str]:
    from npr_pipeline.production import STEPS

    unknown = [s for s in chosen or [] if s not in STEPS]
    if unknown:
        raise _fail(f"unknown step(s) {', '.join(unknown)}; steps: {', '.join(STEPS)}")
    return list(chosen or STEPS)


@app.command()
def status(
    period: Annotated[str, typer.Option(help="2026-03, 2026-T1 or 2026.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Per production step: units expected, delivered, missing, deadline, gate open or closed."""
    from datetime import date

    from npr_pipeline.intake.ledger import load_ledger
    from npr_pipeline.production import STEPS
    from npr_pipeline.production.gate import gate_status
    from npr_pipeline.registry import current_registry

    chosen = _period(period)
    home = State.home.ensure()
    _require_registry(home)
    registry, ledger = current_registry(home), load_ledger(home)
    try:
        statuses = [gate_status(registry, ledger, chosen, s, date.today()) for s in STEPS]
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    doc = {"period": str(chosen), "steps": [s.as_json() for s in statuses]}
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False))
        return
    table = Table(title=f"npr status {chosen}")
    for column in ("step", "expected", "delivered", "missing", "deadline", "gate"):
        table.add_column(column)
    for step in doc["steps"]:
        gate = "[green]open[/green]" if step["gate"] == "open" else "[red]closed[/red]"
        table.add_row(
            step["step"], str(step["expected"]), str(step["delivered"]),
            str(len(step["missing"])), str(step["deadline"]), gate,
        )  # fmt: skip
    out.print(table)
    missing = {m["reshID"]: m for step in doc["steps"] for m in step["missing"]}
    if missing:
        detail = Table(title="missing units")
        for column in ("reshID", "name", "last submission", "deadline", "days"):
            detail.add_column(column)
        for m in list(missing.values())[:50]:
            detail.add_row(
                m["reshID"], m["name"], str(m["last_submission"] or "-"), str(m["deadline"]),
                str(m["days_to_deadline"]),
            )  # fmt: skip
        out.print(detail)
        if len(missing) > 50:
            out.print(f"... and {len(missing) - 50} more (use --json)")


@app.command()
def run(
    period: Annotated[str, typer.Option(help="2026-03, 2026-T1 or 2026.")],
    step: Annotated[list[str] | None, typer.Option(help="Step(s); default all four.")] = None,
    allow_missing: Annotated[
        str, typer.Option(help="Audited override: RESH ids allowed to be missing, comma-separated.")
    ] = "",
    reason: Annotated[
        str, typer.Option(help="Why the override is needed (required with it).")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Also show Dagster's own log on the terminal.")
    ] = False,
) -> None:
    """Materialise the period's production through Dagster (exit 3 when a gate is closed)."""
    import getpass
    import warnings
    from datetime import date

    from npr_pipeline.intake.ledger import load_ledger
    from npr_pipeline.production.gate import Override, OverrideError, judge_period
    from npr_pipeline.registry import current_registry

    chosen, steps = _period(period), _steps(step)
    allowed = [r.strip() for r in allow_missing.split(",") if r.strip()]
    if allowed and not reason.strip():
        raise _fail("--allow-missing needs --reason (the override is audited)")
    _require_registry(State.home)
    home = State.home.ensure()
    started = time.perf_counter()
    ledger = load_ledger(home)
    if not (ledger["year"] == chosen.year).any():
        raise _fail(
            f"refused: nothing has been received for {chosen.year} yet, so every unit is "
            "missing; run npr intake DIR first",
            EXIT_REFUSED,
        )
    try:  # the gate's verdict before launching anything: a refusal takes seconds
        override = Override.of(allowed, reason, getpass.getuser())
        verdict = judge_period(current_registry(home), ledger, chosen, date.today(), override)
    except OverrideError as exc:
        raise _fail(str(exc)) from exc
    if not verbose:
        warnings.filterwarnings("ignore", module="dagster")  # beta notices, not for operators
    if verdict.closed(steps):
        from assets.launch import record_refusal  # the CLI is the composition root

        run_id = record_refusal(home, verdict, steps)
        gates = [_gate_doc(verdict.step_json(s)) for s in steps]
        _report_run(home, str(chosen), run_id, gates, [], started, as_json)
        raise typer.Exit(EXIT_REFUSED)
    from assets.launch import run_period  # the CLI is the composition root: it starts Dagster

    with _progress(_terminal()) as progress:
        task = progress.add_task(f"run {chosen}: starting Dagster", total=3 + 2 * len(steps))

        def advance(event: str, name: str) -> None:
            if event == "start":
                progress.update(task, description=f"run {chosen}: {name}")
            else:
                progress.advance(task)
            progress.refresh()

        outcome = run_period(home, str(chosen), steps, override, advance, verbose)
        progress.update(task, description=f"run {chosen}: finished")
    for check in outcome.quality_failures:
        console.print(f"[red]blocked by quality check[/red] {check}")
    for error in outcome.errors if not outcome.refused else []:
        console.print(f"[red]failed[/red] {error}")
    gates = [_gate_doc(g) for g in outcome.gates]
    _report_run(home, str(chosen), outcome.run_id, gates, outcome.deliveries, started, as_json)
    if outcome.refused:
        raise typer.Exit(EXIT_REFUSED)
    if not outcome.success:
        console.print(f"see the run's log: Dagster UI, run {outcome.run_id} (or --verbose)")
        raise typer.Exit(1)


def _terminal() -> Console:
    """The operator's terminal for progress while Dagster runs steps: Dagster captures the
    process's stdout and stderr into each step's compute log, so progress writes to a copy of
    the stderr descriptor taken before (the usual console where there is none, as in tests)."""
    import io
    import os
    import sys

    try:
        fd = os.dup(sys.stderr.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        return console
    return Console(file=os.fdopen(fd, "w", closefd=True))


def _gate_doc(record: dict) -> dict:
    """A gate as ``npr run --json`` reports it (CONTRACT.md), with the excused units."""
    excused = set(record["excused"])
    return {
        "step": record["step"],
        "gate": record["gate"],
        "missing": [m for m in record["missing"] if m["reshID"] not in excused],
        "excused": sorted(excused),
        "override": record["override"],
        "build_id": record.get("build_id"),
    }


def _report_run(
    home: Home,
    period: str,
    run_id: str,
    gates: list[dict],
    deliveries: list[dict],
    started: float,
    as_json: bool,
) -> None:
    """The run's gates, deliveries and headline numbers: a JSON document or lines and tables."""
    from npr_pipeline.production.headlines import headlines

    numbers = headlines(home, period) if deliveries else []
    if as_json:
        doc = {
            "period": period,
            "run_id": run_id,
            "gates": gates,
            "deliveries": deliveries,
            "headlines": [{"step": s, "measure": m, "value": v} for s, m, v in numbers],
            "seconds": round(time.perf_counter() - started, 1),
        }
        out.print_json(json.dumps(doc, ensure_ascii=False, default=str))
        return
    for gate in gates:
        names = ", ".join(f"{m['reshID']} {m['name']}" for m in gate["missing"][:20])
        more = f" (+{len(gate['missing']) - 20} more)" if len(gate["missing"]) > 20 else ""
        if gate["gate"] != "open":
            console.print(
                f"[red]gate closed[/red] {gate['step']}: {len(gate['missing'])} missing: "
                f"{names}{more}"
            )
        elif gate["excused"]:
            console.print(
                f"[yellow]gate open by override[/yellow] {gate['step']}: excused "
                f"{', '.join(gate['excused'])} (left out of the period)"
            )
    for delivery in deliveries:
        console.print(
            f"[green]delivered[/green] {delivery['step']} {period} v{delivery['version']}"
        )
    if numbers:
        _print_headlines(numbers, period)
    seconds = time.perf_counter() - started
    if deliveries:
        console.print(f"run {run_id} ({seconds:.1f} s); warehouse: {home.warehouse}")
    elif any(gate["gate"] != "open" for gate in gates):
        console.print(f"run {run_id} ({seconds:.1f} s): refused, nothing delivered")
    else:
        console.print(f"run {run_id} ({seconds:.1f} s): nothing delivered")
    console.print(f"Dagster UI: DAGSTER_HOME={home.dagster_home} dagster dev -w workspace.yaml")


def _print_headlines(rows: list[tuple[str, str, str]], period: str) -> None:
    table = Table(title=f"headline numbers {period} (current versions)")
    for column in ("delivery", "measure", "value"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table)


@app.command()
def diff(
    period: Annotated[str, typer.Option(help="2026-03, 2026-T1 or 2026.")],
    step: Annotated[str, typer.Option(help="ventetider, isf, gjestepasient or kjernejournal.")],
    from_version: Annotated[int | None, typer.Option("--from", help="Older version.")] = None,
    to_version: Annotated[int | None, typer.Option("--to", help="Newer version.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """What changed between two versions of a delivery (default: the last two)."""
    from npr_pipeline.production.diff import DiffError, diff_versions

    chosen, steps = _period(period), _steps([step])
    try:
        doc = diff_versions(State.home, steps[0], str(chosen), from_version, to_version)
    except (DiffError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        out.print_json(json.dumps(doc, ensure_ascii=False, default=str))
        return
    out.print(f"{step} {chosen}: version {doc['from']} -> {doc['to']}")
    table = Table()
    for column in ("table", "added", "removed", "changed"):
        table.add_column(column)
    for name, t in doc["tables"].items():
        table.add_row(name, str(t["added"]), str(t["removed"]), str(t["changed"]))
    out.print(table)
    for name, t in doc["tables"].items():
        for example in t["examples"][:10]:
            out.print(f"  {name}: {example}")
    changed = {k: v for k, v in doc["provenance"].items() if v["changed"]}
    if not changed:
        out.print("provenance: unchanged (code, catalogue, registry, reference data, lock)")
        return
    provenance = Table(title="provenance changed")
    for column in ("field", "from", "to"):
        provenance.add_column(column)
    for field, v in changed.items():
        provenance.add_row(field, str(v["from"]), str(v["to"]))
    out.print(provenance)


@app.command()
def extract(
    spec: Annotated[Path, typer.Option("--spec", help="The project's extract spec (YAML).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files and manifest.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Write a research extract: approved variables, pseudonyms, suppressed tables, manifest."""
    from npr_pipeline.research.extract import run_extract
    from npr_pipeline.research.pseudonym import PseudonymKeyError
    from npr_pipeline.research.spec import SpecError

    if not spec.is_file():
        raise _fail(f"no such file: {spec}")
    try:
        result = run_extract(State.home, spec, out_dir)
    except SpecError as exc:
        raise _fail(str(exc)) from exc
    except PseudonymKeyError as exc:
        raise _fail(str(exc), EXIT_REFUSED) from exc
    if as_json:
        out.print_json(json.dumps(result.as_json(), ensure_ascii=False))
        return
    table = Table(title=f"npr extract {spec.name}")
    for column in ("file", "period", "rows", "sha256"):
        table.add_column(column)
    for entry in result.files:
        table.add_row(
            str(entry["file"]), str(entry["period"]), str(entry["rows"]), str(entry["sha256"])[:16]
        )
    out.print(table)
    out.print(f"suppressed cells: {result.suppressed}")
    out.print(f"manifest: {result.manifest}")


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="Units in the demo year.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """What ``make demo`` runs: a synthetic year through intake, quality and a tertial run."""
    from npr_pipeline.settings import TEST, load_settings, record_environment

    home = State.home.ensure()
    try:  # the demo's data are synthetic (month + 80): a test HOME, never a production one
        record_environment(home, TEST, "npr demo")
    except HomeEnvironmentError as exc:
        raise _fail(str(exc), EXIT_REFUSED) from exc
    console.print(f"settings: {load_settings(home).model_dump()}")
    demo_dir = home.root / "demo-input"
    shutil.rmtree(demo_dir, ignore_errors=True)
    demo_dir.mkdir(mode=0o700)  # the senders' files: the ide files hold fødselsnummer
    synth(
        out_dir=demo_dir,
        year=2026,
        through="2026-04",
        units=units,
        seed=seed,
        episodes_per_unit_month=30.0,
        defects=0.0,
    )
    registry_import(demo_dir / "registry.csv")
    intake(demo_dir / "inbox", as_json=False, workers=2)
    status(period="2026-T1", as_json=False)
    run(period="2026-T1", step=None, allow_missing="", reason="", as_json=False, verbose=False)
    from npr_pipeline.research.pseudonym import ensure_demo_key

    ensure_demo_key(home)
    extract(
        spec=Path(__file__).resolve().parents[1] / "docs" / "example-extract.yaml",
        out_dir=home.extracts / "demo",
        as_json=False,
    )
    out.print(f"HOME: {home.root}")
    out.print(f"  deliveries: {home.warehouse} (tables *_current; delivery_versions)")
    out.print(f"  kjernejournal (restricted): {home.restricted}")
    out.print(f"  feedback: {home.feedback}  (npr feedback SUBMISSION_ID)")
    out.print(f"  research extract: {home.extracts / 'demo'} (manifest.json)")
    out.print(
        f"  Dagster UI: DAGSTER_HOME={home.dagster_home} .venv/bin/dagster dev -w workspace.yaml"
    )
