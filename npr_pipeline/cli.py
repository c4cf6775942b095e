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
from npr_pipeline.registry import RegistryError, import_registry

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
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
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
) -> None:
    """Receive every file in INBOX: archive, gate, validate, parse into the lake, report."""
    from npr_pipeline.intake.run import intake_directory

    if not inbox.is_dir():
        raise _fail(f"no such folder: {inbox}")
    home = State.home.ensure()
    files = sum(1 for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))
    with _progress() as progress:
        task = progress.add_task("intake files", total=files)
        summary = intake_directory(
            home, inbox, workers=workers, progress=lambda n: progress.advance(task, n)
        )
    if as_json:
        out.print_json(json.dumps(summary.as_json(), ensure_ascii=False))
        return
    _print_intake(summary)


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


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="Units in the demo year.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """What ``make demo`` runs: a small synthetic year, loaded into HOME."""
    home = State.home.ensure()
    demo_dir = home / "demo-input"
    shutil.rmtree(demo_dir, ignore_errors=True)
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
    out.print(f"HOME: {home.root}")
    out.print(f"  lake:     {home.lake}")
    out.print(f"  feedback: {home.feedback}  (npr feedback SUBMISSION_ID)")
    out.print(f"  ledger:   {home.ledger}")
