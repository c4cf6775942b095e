"""The ``npr`` command: the operator contract of CONTRACT.md.

Exit codes: 0 done (rejected submissions are a result, not a failure), 2 bad usage or bad input
to the command itself, 3 refused by a rule, 1 internal error. ``--json`` prints one JSON document.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from npr_pipeline.errors import Refused, log_error, needs_bytes, storage_problem
from npr_pipeline.home import Home
from npr_pipeline.registry import NoRegistry, RegistryError, current_version, import_registry
from npr_pipeline.settings import HomeEnvironmentError

EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_REFUSED = 3


def _console(stderr: bool = False) -> Console:
    """A console that wraps only on a terminal: piped output keeps whole lines and tables."""
    stream = sys.stderr if stderr else sys.stdout
    if getattr(stream, "isatty", lambda: False)():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=10_000, soft_wrap=True)


console = _console(stderr=True)
out = _console()


def _print_json(doc: object) -> None:
    """One JSON document on stdout, as plain text: rich's ``print_json`` highlights and wraps
    it token by token, 9 of the 15 seconds of ``npr status --json`` over 65,000 units
    (docs/benchmarks.md)."""
    out.file.write(json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n")
    out.file.flush()


class State:
    """Options of the top-level callback, shared with the commands."""

    home: Home = Home.resolve()
    verbose: bool = False


class _Commands(TyperGroup):
    """Every command: a refusal is one line and exit 3; a full disk, a read-only HOME, a
    permission error or any other error of ours is one line and exit 1 (the traceback goes to
    a log, or with --verbose to the terminal), never a page of traceback."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _human_metavars(self)

    def invoke(self, ctx: typer.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except Refused as exc:
            console.print(f"[red]refused:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(EXIT_REFUSED) from exc
        except BrokenPipeError as exc:  # the reader of our output left: `npr status | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no flush error
            console.print("[red]error:[/red] standard output closed before the end")
            raise typer.Exit(EXIT_INTERNAL) from exc
        except Exception as exc:
            if type(exc).__module__.startswith(("typer", "click")):  # usage errors, Exit
                raise
            message = storage_problem(exc, State.home.root)
            if message is None:  # a defect of ours: still one line, its traceback logged
                message = f"internal error: {type(exc).__name__}: {exc}"
            log = _log_traceback(exc)
            where = f" (traceback in {log})" if log else ""
            console.print(f"[red]error:[/red] {escape(message + where)}", highlight=False)
            if State.verbose:
                console.print("".join(traceback.format_exception(exc)), markup=False)
            raise typer.Exit(EXIT_INTERNAL) from exc


# What help shows for an option's value, by parameter name (default: the name in capitals).
METAVARS = {
    "home": "DIR",
    "out_dir": "DIR",
    "spec": "FILE",
    "period": "PERIOD",
    "step": "STEP",
    "allow_missing": "RESH,...",
    "reason": "TEXT",
    "from_version": "VERSION",
    "to_version": "VERSION",
    "through": "YYYY-MM",
    "episodes_per_unit_month": "K",
    "defects": "SHARE",
    "units": "N",
    "seed": "N",
    "workers": "N",
}


def _human_metavars(command) -> None:
    """Help shows PERIOD, DIR, N instead of <str>, <path>, <list[str]>, and nothing after a
    flag (not <bool>), for every command, whoever wrote it."""
    for param in command.params:
        if param.metavar is None:
            flag = getattr(param, "is_flag", False)
            param.metavar = "" if flag else METAVARS.get(param.name, param.name.upper())
        if param.param_type_name == "argument":  # its name says it: no <path> beside it
            param.display_type_rich = lambda ctx: None
    original = command.get_help_option

    def help_option(ctx):
        option = original(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = help_option
    for sub in getattr(command, "commands", {}).values():
        _human_metavars(sub)


def _log_traceback(exc: BaseException) -> Path | None:
    """Append the traceback to HOME/logs/npr-errors.log, or a temporary file if HOME can't."""
    return log_error(State.home.root, " ".join(sys.argv), "".join(traceback.format_exception(exc)))


app = typer.Typer(
    cls=_Commands,
    add_completion=False,
    help="npr-pipeline: the production platform of Norsk pasientregister.",
)
registry_app = typer.Typer(help="The unit registry.")
app.add_typer(registry_app, name="registry")


@app.callback()
def main(
    home: Annotated[
        Path | None,
        typer.Option("--home", envvar="NPR_HOME", help="Runtime state folder (default data/home)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", help="Full tracebacks of internal errors.")
    ] = False,
) -> None:
    """Set HOME for every command."""
    global console, out
    console, out = _console(stderr=True), _console()
    State.home = Home.resolve(home)
    State.verbose = verbose


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _existing_home() -> Home:
    """HOME for a command that does not create one: a missing HOME is a mistyped --home.

    ``registry import``, ``intake`` and ``demo`` create HOME; every other command refuses a
    folder that is not one (exit 2) instead of silently making an empty HOME and reporting on it.
    """
    home = State.home
    if not home.ledger.is_dir():
        what = "is not an npr HOME" if home.root.is_dir() else "does not exist"
        raise _fail(
            f"HOME {home.root} {what} (mistyped --home or NPR_HOME?); "
            "`npr registry import` or `npr intake` creates one"
        )
    return home


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
    defects: Annotated[
        float,
        typer.Option(
            help="Share of monthly files with a labelled fault (the daily route ignores it)."
        ),
    ] = 0.0,
    route: Annotated[
        str,
        typer.Option(
            help="monthly: cumulative ord/ide files; daily: the same truth as daily event files "
            "(corrections, duplicates, out-of-order, closings); mixed: --daily-share of the units "
            "daily, the rest monthly."
        ),
    ] = "monthly",
    daily_share: Annotated[
        float, typer.Option(help="With --route mixed: the share of units on the daily route.")
    ] = 0.5,
    private_units: Annotated[
        int, typer.Option(help="Add N privately funded providers (most tiny, some idle).")
    ] = 0,
) -> None:
    """Write a synthetic reporting year: registry.csv, inbox/ and (with --defects) defects.csv."""
    from npr_pipeline import reference
    from npr_pipeline.synth.run import ROUTES, SynthOptions, run_synth, select_units

    match = re.fullmatch(r"(\d{4})-(0[1-9]|1[0-2])", through)
    if not match or int(match[1]) != year:
        raise _fail(f"--through must be a month of {year} as YYYY-MM, got {through!r}")
    if not 0 <= defects <= 1 or (units is not None and units < 1):
        raise _fail("--defects must be within 0..1 and --units at least 1")
    if route not in ROUTES or not 0 <= daily_share <= 1 or private_units < 0:
        raise _fail(
            f"--route must be one of {', '.join(ROUTES)}, --daily-share within 0..1 and "
            "--private-units at least 0"
        )
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
        route=route,
        daily_share=daily_share,
        private_units=private_units,
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

    Exit 1 if any file failed on the register's side (listed as failed: the next intake
    retries it), 3 if another intake held this HOME for longer than --wait seconds.
    """
    from npr_pipeline.intake.run import intake_directory
    from npr_pipeline.locking import HomeLocked

    if not inbox.is_dir():
        raise _fail(f"no such folder: {inbox}")
    home = State.home.ensure()
    _require_registry(home)
    received = [p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".")]

    def waiting(holder: str) -> None:
        console.print(f"waiting up to {wait:.0f} s for the intake of {holder}")

    try:
        with _progress() as progress:
            task = progress.add_task("intake files", total=len(received))
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
    except OSError as exc:
        if exc.errno == errno.ENOSPC:  # the archive alone needs the inbox's bytes
            needs_bytes(exc, sum(p.stat().st_size for p in received))
        raise
    if as_json:
        _print_json(summary.as_json())
    else:
        _print_intake(summary)
    if summary.count("failed"):
        raise _fail(f"{summary.count('failed')} file(s) failed; the next intake retries them", 1)


ATTENTION_ROWS = 30


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
    _print_attention(doc["submissions"])


def _print_attention(submissions: list[dict]) -> None:
    """Rejected and failed files and files with content errors, with the ids feedback takes."""
    rows = []
    for sub in submissions:
        errors = (sub.get("quality") or {}).get("errors", 0)
        if sub["status"] in ("rejected", "failed"):
            codes = dict.fromkeys(r["code"] for r in sub["reasons"])
            rows.append((sub, ", ".join(codes) or "-"))
        elif errors:
            rows.append((sub, f"{errors} content error(s)"))
    if not rows:
        return
    table = Table(title="files to look at (npr feedback ID or FILE)")
    for column in ("submission id", "file", "status", "why"):
        table.add_column(column)
    for sub, why in rows[:ATTENTION_ROWS]:
        table.add_row(sub["submission_id"], sub["file"], sub["status"], why)
    out.print(table)
    if len(rows) > ATTENTION_ROWS:
        out.print(f"... and {len(rows) - ATTENTION_ROWS} more (use --json)")


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Submission files (or folders of them).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write each file's reports to DIR/<file stem>/.")
    ] = None,
    registry: Annotated[
        Path | None,
        typer.Option("--registry", help="A unit registry CSV: also check the sender against it."),
    ] = None,
    synthetic_fnr: Annotated[
        bool,
        typer.Option(
            "--synthetic-fnr", help="Synthetic fødselsnummer (month + 80) are valid, as in tests."
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """The register's answers (XPR_VAL, XPR_ERR) to FILES, locally: no HOME is read or written.

    Exit 0 when every file is valid (warnings allowed), 3 when any file has an error (refused
    by a rule), 2 for a missing file or a registry that cannot be read.
    """
    from npr_pipeline.registry import RegistryError
    from npr_pipeline.validate import validate_files

    paths = _submission_files(files)
    try:
        answers = validate_files(paths, out, registry, synthetic_fnr)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    invalid = [a for a in answers if not a.valid]
    if as_json:
        doc = {
            "files": len(answers),
            "valid": len(answers) - len(invalid),
            "invalid": len(invalid),
            "out": str(out) if out else None,
            "submissions": [a.as_json() for a in answers],
        }
        _console().print_json(json.dumps(doc, ensure_ascii=False))
    else:
        _print_validation(answers, out)
    if invalid:
        raise typer.Exit(EXIT_REFUSED)


def _submission_files(given: list[Path]) -> list[Path]:
    """The files named, a folder standing for the files in it; a missing one is bad input."""
    found: list[Path] = []
    for path in given:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        elif path.is_file():
            found.append(path)
        else:
            raise _fail(f"no such file: {path}")
    return found


def _print_validation(answers, folder: Path | None) -> None:
    table = Table("file", "type", "status", "errors", "warnings", "first findings")
    for answer in answers:
        codes: dict[str, int] = {}
        for finding in answer.findings:
            if finding["severity"] != "info":
                codes[finding["rule"]] = codes.get(finding["rule"], 0) + 1
        shown = ", ".join(f"{code} ({n})" for code, n in list(codes.items())[:4])
        table.add_row(
            escape(answer.file),
            answer.message_type or "-",
            "valid" if answer.valid else "[red]invalid[/red]",
            str(answer.count("error")),
            str(answer.count("warning")),
            escape(shown),
        )
    out.print(table)
    if folder is not None:
        out.print(f"answers (XPR_VAL, XPR_ERR as XML, HTML, CSV) in {escape(str(folder))}")


@app.command()
def send(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for an intake of this HOME to finish.")
    ] = 600.0,
) -> None:
    """Build the e-mails of the days that are over and send every e-mail still pending (intake
    does both too; SMTP in settings.json).

    Exit 1 if any e-mail could still not be sent (it stays in HOME/outbox for the next try),
    3 if an intake held this HOME for longer than --wait seconds.
    """
    from datetime import UTC, datetime

    from npr_pipeline.feedback.digest import close_days
    from npr_pipeline.feedback.mail import send_pending
    from npr_pipeline.locking import HomeLocked, home_lock
    from npr_pipeline.settings import load_settings

    home = _existing_home()
    settings = load_settings(home)
    try:  # intake sends too, and sweeps the outbox's unfinished writes under the same lock
        with home_lock(home, "intake", wait):
            close_days(home, settings, datetime.now(UTC))  # the e-mails of the days that are over
            counts = send_pending(home, settings)
    except HomeLocked as exc:
        raise _fail(str(exc), EXIT_REFUSED) from None
    doc = {"smtp": settings.smtp_host is not None, **counts}
    if as_json:
        out.print_json(json.dumps(doc))
    elif not settings.smtp_host:
        out.print("e-mail is off (no smtp_host in settings.json): nothing sent")
    else:
        out.print(f"{counts['sent']} e-mail(s) sent, {counts['failed']} failed")
    unsent = counts["failed"] + counts["pending"]
    if unsent:
        raise _fail(f"{unsent} e-mail(s) not sent; they stay pending in the outbox", 1)


@app.command()
def feedback(
    submission: Annotated[
        str,
        typer.Argument(
            metavar="ID_OR_FILE", help="Submission id or received file name (from npr intake)."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Where a submission's XPR_VAL / XPR_ERR reports are, and what they found (a daily
    file's HTML and CSV are rendered from its XML answers here, on request)."""
    from npr_pipeline.feedback.reports import (
        display_files,
        read_report_findings,
        read_report_summary,
    )

    home = _existing_home()
    record = _submission(home, submission)
    folder = home.feedback / record.submission_id
    shown = {path.name: str(path) for path in display_files(folder)}  # maybe elsewhere
    reports = {
        kind: {"xml": str(folder / f"{kind}.xml")}
        | {fmt: shown[f"{kind}.{fmt}"] for fmt in ("html", "csv")}
        for kind in ("XPR_VAL", "XPR_ERR")
        if f"{kind}.html" in shown
    }
    findings = read_report_findings(folder)
    if not findings:  # no reports (e.g. a file that failed): what the ledger recorded
        findings = [
            {
                "report": None,
                "rule": r["code"],
                "severity": r.get("severity", "error"),
                "record": {k: r[k] for k in ("line", "element") if r.get(k) is not None},
                "message": r["message"],
                "fix": None,
            }
            for r in record.reasons
        ]
    doc = {
        "submission_id": record.submission_id,
        "file": record.file,
        "status": record.status,
        "unit": record.unit,
        "message_type": record.message_type,
        "reports": reports,
        "findings": findings,
        "summary": read_report_summary(folder) if folder.exists() else {},
    }
    if as_json:
        _print_json(doc)
        return
    out.print(
        f"[bold]{escape(record.file)}[/bold]  {record.submission_id}  "
        f"status: [bold]{record.status}[/bold]",
        highlight=False,
    )
    for kind, paths in reports.items():
        out.print(f"{kind}: {paths['html']}", highlight=False)
    for finding in findings[:20]:
        where = ", ".join(f"{k} {v}" for k, v in finding["record"].items())
        out.print(
            f"  {finding['severity']:7} {finding['rule']:22} {finding['message']}"
            + (f"  ({where})" if where else ""),
            markup=False,
            highlight=False,
        )
    if len(findings) > 20:
        out.print(f"  ... {len(findings) - 20} more in the reports")


def _submission(home: Home, submission: str):
    """The ledger record of a submission id or a received file name (the newest of that name)."""
    from npr_pipeline.store.ledger import load_records, read_record

    if re.fullmatch(r"[0-9a-f]{16}", submission):
        record = read_record(home, submission)
        if record is None:
            raise _fail(f"no submission {submission} in {home.ledger}")
        return record
    named = sorted(
        (r for r in load_records(home) if r.file == Path(submission).name),
        key=lambda r: r.received,
    )
    if not named:
        raise _fail(
            f"no submission id or received file {submission!r} in {home.ledger} "
            "(an id is 16 hex characters; npr intake lists them)"
        )
    if len(named) > 1:
        earlier = ", ".join(r.submission_id for r in named[:-1])
        console.print(
            f"{submission} was received {len(named)} times; newest shown (earlier: {earlier})"
        )
    return named[-1]


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


def _print_reports(reports: list[dict]) -> None:
    """The report types' obligations of ``npr status``: units expected, delivered, missing."""
    table = Table(title="report types")
    for column in ("type", "phase", "expected", "delivered", "missing"):
        table.add_column(column)
    for r in reports:
        missing = ", ".join(m["reshID"] for m in r["missing"][:5])
        more = f" (+{len(r['missing']) - 5})" if len(r["missing"]) > 5 else ""
        table.add_row(r["message_type"], r["phase"], str(r["expected"]), str(r["delivered"]),
                      f"{len(r['missing'])} {missing}{more}".strip())  # fmt: skip
    out.print(table)
    for r in reports:
        if r["not_started"]:
            _print_not_started(r["message_type"], r["start_deadline"], r["not_started"])


def _print_not_started(message_type: str, deadline: str, units: list[dict]) -> None:
    """The obliged units that had sent no file of a type when its start deadline passed."""
    table = Table(title=f"{message_type}: not started by the start deadline {deadline}")
    for column in ("reshID", "name", "start deadline"):
        table.add_column(column)
    for unit in units[:50]:
        table.add_row(unit["reshID"], unit["name"], deadline)
    out.print(table)
    if len(units) > 50:
        out.print(f"... and {len(units) - 50} more not started (use --json)")


@app.command()
def status(
    period: Annotated[str, typer.Option(help="2026-03, 2026-T1 or 2026.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    today: Annotated[
        str | None, typer.Option(help="Judge deadlines on this day (YYYY-MM-DD; default today).")
    ] = None,
) -> None:
    """Per production step: units expected, delivered, missing, deadline, gate open or closed;
    per report type (KPP, forløp, XPR_VTK, TSB): the obliged units that delivered or not, and
    after a type's start deadline (the forløpsmelding's 16 May 2026) the units not started."""
    from datetime import date

    from npr_pipeline.production.daily_gate import daily_gate
    from npr_pipeline.production.gate import gate_statuses
    from npr_pipeline.registry import current_registry
    from npr_pipeline.reports import due_types, obligations
    from npr_pipeline.store.ledger import load_ledger

    chosen = _period(period)
    try:
        day = date.today() if today is None else date.fromisoformat(today)
    except ValueError as exc:
        raise _fail(f"--today: {exc}") from exc
    home = _existing_home()
    _require_registry(home)
    registry, ledger = current_registry(home), load_ledger(home)
    try:
        daily = daily_gate(home, registry, chosen)
        statuses = gate_statuses(registry, ledger, chosen, day, daily=daily)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    reports = obligations(registry, ledger, *chosen.window, day, due=due_types(chosen))
    doc = {
        "period": str(chosen),
        "steps": [s.as_json() for s in statuses],
        "reports": [r.as_json() for r in reports],
    }
    if as_json:
        _print_json(doc)
        return
    _print_reports(doc["reports"])
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
    if ledger.empty:
        out.print(f"no submissions received yet in {home.root}: every obligated unit is missing")
    missing = {m["reshID"]: m for step in doc["steps"] for m in step["missing"]}
    if missing:
        detail = Table(title="missing units")
        for column in ("reshID", "name", "last submission", "deadline", "days past deadline",
                       "why"):  # fmt: skip
            detail.add_column(column)
        for m in list(missing.values())[:50]:
            days = m["days_to_deadline"]
            detail.add_row(
                m["reshID"], m["name"], str(m["last_submission"] or "-"), str(m["deadline"]),
                "-" if days is None else f"{-days:+d}" if days else "0", _why(m),
            )  # fmt: skip
        out.print(detail)
        if len(missing) > 50:
            out.print(f"... and {len(missing) - 50} more (use --json)")


def _why(missing: dict[str, object]) -> str:
    """A daily unit's reason in words, with its differences (closing: postart antall-counted);
    a monthly unit's is its missing ord/ide."""
    reason = missing.get("reason")
    if reason is None:
        return "no delivery (an ord and the ide of its data end) reaching the period's end"
    if reason == "not_closed":
        return "daily: no closing (NPR_AVSLUTNING) covering the period"
    parts = [
        f"{closing} postart {postart}: {diff:+d}"
        for closing, diffs in (missing.get("difference") or {}).items()
        for postart, diff in diffs.items()
    ]
    return "daily: control totals differ from the state (" + ", ".join(parts) + ")"


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

    from npr_pipeline.production.daily_gate import daily_gate
    from npr_pipeline.production.gate import Override, OverrideError, judge_period
    from npr_pipeline.registry import current_registry
    from npr_pipeline.store.ledger import load_ledger

    chosen, steps = _period(period), _steps(step)
    allowed = [r.strip() for r in allow_missing.split(",") if r.strip()]
    if allowed and not reason.strip():
        raise _fail("--allow-missing needs --reason (the override is audited)")
    home = _existing_home()  # a mistyped --home is refused, never created
    _require_registry(home)
    _before_run(home)  # a live run refuses this one now; a killed one is cleared
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
        registry = current_registry(home)
        daily = daily_gate(home, registry, chosen)
        verdict = judge_period(registry, ledger, chosen, date.today(), override, daily)
    except OverrideError as exc:
        raise _fail(str(exc)) from exc
    if not verbose:
        warnings.filterwarnings("ignore", module="dagster")  # beta notices, not for operators
    if verdict.closed(steps):
        from assets.launch import record_refusal  # the CLI is the composition root

        run_id = record_refusal(home, verdict, steps)
        gates = [_gate_doc(verdict.step_json(s)) for s in steps]
        _report_run(home, str(chosen), run_id, gates, [], None, started, as_json)
        raise typer.Exit(EXIT_REFUSED)
    from assets.launch import run_period  # the CLI is the composition root: it starts Dagster

    with _progress(_terminal()) as progress:
        # registry, lake, current submissions and input, a gate and an out per step, the report
        total = 5 + 2 * len(steps)
        task = progress.add_task(f"run {chosen}: starting Dagster", total=total)

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
    _report_run(
        home, str(chosen), outcome.run_id, gates, outcome.deliveries, outcome.report, started,
        as_json,
    )  # fmt: skip
    if outcome.refused:
        raise typer.Exit(EXIT_REFUSED)
    if not outcome.success:
        console.print(f"see the run's log: Dagster UI, run {outcome.run_id} (or --verbose)")
        raise typer.Exit(1)


def _before_run(home: Home) -> None:
    """Before launching: free what killed runs hold (saying so); refuse while a run is live."""
    from assets.run_guard import clear_dead_runs_of

    for line in clear_dead_runs_of(home):
        console.print(f"[yellow]recovered[/yellow] {escape(line)}", highlight=False)


def _terminal() -> Console:
    """The operator's terminal for progress while Dagster runs steps: Dagster captures the
    process's stdout and stderr into each step's compute log, so progress writes to a copy of
    the stderr descriptor taken before (the usual console where there is none, as in tests)."""
    import io
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
    report: str | None,
    started: float,
    as_json: bool,
) -> None:
    """The run's gates, deliveries, headline numbers and report page (its path, or None when
    the run wrote none): a JSON document or lines and tables."""
    from npr_pipeline.production.headlines import headlines

    numbers = headlines(home, period) if deliveries else []
    if as_json:
        doc = {
            "period": period,
            "run_id": run_id,
            "gates": gates,
            "deliveries": deliveries,
            "headlines": [{"step": s, "measure": m, "value": v} for s, m, v in numbers],
            "report": report,
            "seconds": round(time.perf_counter() - started, 1),
        }
        _print_json(doc)
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
    if report:
        console.print(f"report: {report}", highlight=False)
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
    home = _existing_home()
    try:
        doc = diff_versions(home, steps[0], str(chosen), from_version, to_version)
    except (DiffError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        _print_json(doc)
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
            out.print(f"  {name}: {example}", markup=False, highlight=False)
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
    home = _existing_home()
    try:
        result = run_extract(home, spec, out_dir)
    except SpecError as exc:
        raise _fail(str(exc)) from exc
    except PseudonymKeyError as exc:
        raise _fail(str(exc), EXIT_REFUSED) from exc
    if as_json:
        _print_json(result.as_json())
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


def _settings_line(home: Home, settings) -> str:
    accepted = "accepted" if settings.synthetic_fnr_accepted else "rejected as test data"
    return (
        f"settings ({home.root / 'settings.json'}): environment {settings.environment}, "
        f"synthetic fødselsnummer {accepted}"
    )


def _print_routes(registry: Path) -> None:
    """Which of the demo's units report by which route: both routes feed one state, and the
    demo shows the daily units beside the monthly ones."""
    import pandas as pd

    frame = pd.read_csv(registry, dtype=str, keep_default_na=False)
    routes = frame["route"].str.strip().replace("", "monthly")
    for route in ("monthly", "daily"):
        units = sorted(frame.loc[routes == route, "reshID"])
        out.print(f"{route} route: {len(units)} units ({', '.join(units)})", highlight=False)


@app.command()
def demo(
    units: Annotated[int, typer.Option(help="Units in the demo year.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """What make demo runs: a synthetic year (a quarter of the units on the daily route)
    through intake month by month, quality and a tertial run."""
    from npr_pipeline.report.page import PAGE, report_folder
    from npr_pipeline.settings import TEST, load_settings, record_environment

    home = State.home.ensure()
    try:  # the demo's data are synthetic (month + 80): a test HOME, never a production one
        record_environment(home, TEST, "npr demo")
    except HomeEnvironmentError as exc:
        raise _fail(str(exc), EXIT_REFUSED) from exc
    console.print(_settings_line(home, load_settings(home)), highlight=False)
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
        route="mixed",  # a few units on the daily route beside the monthly ones
        daily_share=0.25,
        private_units=0,
    )
    registry_import(demo_dir / "registry.csv")
    _print_routes(demo_dir / "registry.csv")
    from npr_pipeline.synth.delivery import split_by_delivery_month

    for inbox in split_by_delivery_month(demo_dir / "inbox", demo_dir):  # as delivered
        intake(inbox, as_json=False, workers=2)
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
    out.print(f"  feedback: {home.feedback}  (npr feedback ID_OR_FILE)")
    out.print(f"  research extract: {home.extracts / 'demo'} (manifest.json)")
    out.print(
        f"  Dagster UI: DAGSTER_HOME={home.dagster_home} .venv/bin/dagster dev -w workspace.yaml"
    )
    page = report_folder(home, "2026-T1") / PAGE
    out.print(f"report (open in a browser): {page}", highlight=False, soft_wrap=True)
