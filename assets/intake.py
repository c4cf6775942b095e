"""Raw layer: intake of the inbox (the same core code as ``npr intake``) and its sensor."""

import hashlib
import json
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset,
    define_asset_job,
    sensor,
)

from assets.partitions import period_partitions
from assets.resources import HomeResource
from npr_pipeline.intake.receipts import period_receipts, receipt_summary
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.periods import Period
from npr_pipeline.store.ledger import known_submissions, load_ledger
from npr_pipeline.store.state import StateBusy


class IntakeConfig(Config):
    """Which folder to receive from; empty means HOME/inbox."""

    inbox: str = ""


def _inbox(home: HomeResource, config_inbox: str) -> Path:
    return Path(config_inbox) if config_inbox else home.home().root / "inbox"


@asset(
    key=["raw", "submissions"],
    group_name="raw",
    description="Every received file: archived, gate-checked, validated; accepted ones parsed "
    "into the Parquet lake. Materialising it receives what is new in the inbox.",
)
def raw_submissions(
    context: AssetExecutionContext, config: IntakeConfig, home: HomeResource
) -> MaterializeResult:
    inbox = _inbox(home, config.inbox)
    inbox.mkdir(mode=0o700, parents=True, exist_ok=True)  # ide files hold fødselsnummer
    summary = intake_directory(home.home(), inbox)
    doc = summary.as_json()
    context.log.info(
        "intake: %s files, %s accepted, %s rejected, %s duplicates, %s test",
        doc["files"],
        doc["accepted"],
        doc["rejected"],
        doc["duplicates"],
        doc["test"],
    )
    refused = [s.file for s in summary.submissions if s.status == "rejected"]
    failed = [s.file for s in summary.submissions if s.status == "failed"]
    if failed:
        context.log.warning("%s file(s) failed on our side; the next intake retries them", failed)
    counts = ("files", "accepted", "rejected", "duplicates", "test", "failed", "episodes", "bytes")
    return MaterializeResult(
        metadata=_metadata(doc, counts, refused)
        | {"seconds": round(summary.seconds, 2), "failed_files": MetadataValue.json(failed[:200])}
    )


def _metadata(doc: dict, counts: tuple[str, ...], refused: list) -> dict[str, object]:
    """What a data engineer reads on a materialisation: the counts, and what was refused."""
    return {key: doc[key] for key in counts} | {
        "rejected_by_reason": MetadataValue.json(doc["rejected_by_reason"]),
        "rejected_files": MetadataValue.json(refused[:200]),
    }


@asset(
    key=["raw", "lake"],
    group_name="raw",
    partitions_def=period_partitions,
    deps=[AssetKey(["raw", "submissions"])],
    backfill_policy=BackfillPolicy.single_run(),
    description="Per period: the submissions whose data end in the period's window and the "
    "lake tables parsed from them (accepted), with what was refused and why. Receiving itself "
    "is one step for the whole inbox; this is its account per period.",
)
def raw_lake(context: AssetExecutionContext, home: HomeResource) -> MaterializeResult:
    ledger = load_ledger(home.home())
    periods = {}
    for key in context.partition_keys:
        summary = receipt_summary(period_receipts(ledger, Period.parse(key)))
        periods[key] = summary
        context.log.info(
            "%s: %s files, %s accepted, %s rejected, %s episodes",
            key,
            summary["files"],
            summary["accepted"],
            summary["rejected"],
            summary["episodes"],
        )
    last = periods[context.partition_keys[-1]]
    counts = ("files", "accepted", "rejected", "test", "bytes", "episodes", "units")
    return MaterializeResult(
        metadata=_metadata(last, counts, last["rejected_files"])
        | {
            "periods": MetadataValue.json(
                {
                    k: {n: v[n] for n in ("files", "accepted", "rejected")}
                    for k, v in periods.items()
                }
            ),
        }
    )


intake_job = define_asset_job(
    "intake_job",
    selection=[AssetKey(["raw", "submissions"]), AssetKey(["preliminary", "daily_activity"])],
    description="Intake of every new file in HOME/inbox (what `npr intake` does), then the "
    "preliminary daily activity refreshed from the state it left.",
)


@sensor(
    job=intake_job,
    minimum_interval_seconds=30,
    description="Every 30 seconds: start an intake run when HOME/inbox holds files the ledger "
    "has not seen (a new listing of names, sizes and modification times).",
)
def inbox_sensor(context: SensorEvaluationContext, home: HomeResource):
    """Request an intake run when the inbox holds files the ledger has not seen."""
    home = home.home()
    inbox = home.root / "inbox"
    if not inbox.is_dir():
        return SkipReason(f"no inbox at {inbox}")
    listing = sorted(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in inbox.iterdir()
        if p.is_file() and not p.name.startswith(".")
    )
    fingerprint = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    if fingerprint == context.cursor:
        return SkipReason("inbox unchanged")
    ids = {name: _submission_id(inbox / name) for name, _, _ in listing}
    try:
        known = known_submissions(home, ids.values())  # one indexed query for the inbox
    except StateBusy:  # the cursor stays: the next tick looks again
        return SkipReason("the ledger is busy (an intake is committing)")
    context.update_cursor(fingerprint)
    new = [name for name, sid in ids.items() if sid not in known]
    if not new:
        return SkipReason("every file in the inbox is in the ledger")
    return RunRequest(run_key=fingerprint, tags={"npr/new_files": str(len(new))})


def _submission_id(path: Path) -> str:
    """The content-addressed id these exact bytes get at intake."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]
