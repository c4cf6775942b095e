"""The ``npr`` command: the operator contract of CONTRACT.md.

Exit codes: 0 done (rejected submissions are a result, not a failure), 2 bad usage or bad input
to the command itself, 3 refused by a rule, 1 internal error. ``--json`` prints one JSON document.
"""

from __future__ import annotations

import json
import re
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
def demo(
    units: Annotated[int, typer.Option(help="Units in the demo year.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 1,
) -> None:
    """What ``make demo`` runs: a small synthetic year, loaded into HOME."""
    home = State.home.ensure()
    demo_dir = home / "demo-input"
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
    out.print(json.dumps({"home": str(home.root), "inbox": str(demo_dir / "inbox")}))
