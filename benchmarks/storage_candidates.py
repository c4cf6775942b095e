"""Storage candidates for issue 13: Delta Lake, Iceberg (SQL catalog), DuckLake, DuckDB ledger.

Not part of the project: it runs in a scratch venv holding the candidates (never imported by
tests, no dependency in pyproject.toml)::

    python3 -m venv /work/scratch-store/venv
    /work/scratch-store/venv/bin/pip install deltalake 'pyiceberg[sql-sqlite,pyarrow]' \
        duckdb==1.5.5 duckdb-extension-ducklake==1.5.5 duckdb-extension-sqlite==1.5.5 \
        duckdb-extension-delta==1.5.5 duckdb-extension-iceberg==1.5.5 \
        duckdb-extension-avro==1.5.5 pandas pytz
    /work/scratch-store/venv/bin/python benchmarks/storage_candidates.py --out .bench/storage

Rows follow the lake's schemas (npr_pipeline/store/lake.py, copied here so the scratch venv
needs nothing from the project; checked against it when the project is importable) and the
ledger's columns (npr_pipeline/store/ledger.py). A "file" is one small daily submission of one
unit: on average ~10 rows across episodes, diagnoses, procedures and referrals.

Measures (each repeated ``--repeats`` times, medians reported): 1. commit cost per intake batch,
2. a national day and its compaction, 3. period reads and time travel, 4. the ledger as a table
and its uniqueness, 5. a second reader, 6. two writers at once. Results: ``<out>/results.json``
and a Markdown summary ``<out>/results.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import glob
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

S, D, TS, INT, I64 = pa.string(), pa.date32(), pa.timestamp("s"), pa.int32(), pa.int64()
KEYS = (("submission_id", S), ("unit", S), ("year", INT))
TABLES = {
    "episodes": (("pasientNr", S), ("episodeID", S), ("reshID", S), ("fagomrade", S),
                 ("omsorgsniva", S), ("innmateHast", S), ("kontaktType", S), ("debitor", S),
                 ("komNrHjem", S), ("innDatoTid", TS), ("utDatoTid", TS),
                 ("henvisningsperiodeID", S), ("drg", S), ("drgKilde", S), ("line", INT)),
    "diagnoses": (("pasientNr", S), ("episodeID", S), ("tilstNr", INT), ("kodeNr", S),
                  ("kodeverk", S)),
    "procedures": (("pasientNr", S), ("episodeID", S), ("seq", INT), ("kodeNr", S),
                   ("kodeverk", S), ("dato", D)),
    "referrals": (("pasientNr", S), ("henvisningsperiodeID", S), ("reshID", S), ("fagomrade", S),
                  ("mottattDato", D), ("ansiennitetsdato", D), ("vurderingsdato", D),
                  ("fristStartHelsehjelp", D), ("tjenestestart", D), ("avviklingsdato", D),
                  ("avviklingskode", S), ("prioritet", S), ("line", INT)),
}  # fmt: skip
LEDGER = (("submission_id", S), ("checksum", S), ("file", S), ("size", I64), ("received", S),
          ("status", S), ("unit", S), ("her", S), ("orgnr", S), ("message_type", S),
          ("version", S), ("year", I64), ("period_from", S), ("period_to", S),
          ("extracted", S), ("lopenr", I64), ("receiver", S), ("episodes", I64),
          ("patients", I64), ("reason_codes", S))  # fmt: skip
LEDGER_KEY = ("unit", "message_type", "year", "lopenr")
YEAR, DAY = 2026, dt.date(2026, 4, 15)
WINDOW = (dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1))  # the period read: March
SCHEMAS = {t: pa.schema([pa.field(n, ty) for n, ty in KEYS + c]) for t, c in TABLES.items()}
LEDGER_SCHEMA = pa.schema([pa.field(n, t) for n, t in LEDGER])
ROOT = Path(__file__).resolve().parents[1]


def check_schemas() -> str:
    """Compare the copied schemas with the project's when it can be imported."""
    sys.path.insert(0, str(ROOT))
    try:
        from npr_pipeline.store.lake import schema_of
    except Exception as problem:  # the scratch venv lacks the project's dependencies
        return f"not checked ({type(problem).__name__})"
    for table, schema in SCHEMAS.items():
        assert schema_of(table).equals(schema), table
    return "equal to npr_pipeline.store.lake"


# ---------------------------------------------------------------- data


def make_files(n: int, seed: int, first: int = 0) -> list[dict[str, list[tuple]]]:
    """``n`` small daily submissions, one unit each: rows per table plus a ledger row."""
    rng = random.Random(seed)
    start = dt.datetime(2026, 2, 14)
    out = []
    for i in range(first, first + n):
        unit, sid = str(9_000_000 + i % 65_000), f"{seed:04x}{i:012x}"
        rows: dict[str, list[tuple]] = {t: [] for t in TABLES}
        n_ep = rng.choices(range(9), weights=(10, 30, 20, 15, 10, 6, 4, 3, 2))[0]
        line = 1
        for e in range(n_ep):
            pas, epi, ref = f"P{rng.randrange(10**8):08d}", f"E{i}-{e}", f"H{i}-{e}"
            inn = start + dt.timedelta(minutes=rng.randrange(60 * 24 * 60))
            ut = inn + dt.timedelta(hours=rng.randrange(1, 96))
            rows["episodes"].append((sid, unit, YEAR, pas, epi, unit, rng.choice(("010", "020",
                "030", "110")), rng.choice("1235"), rng.choice("1245"), rng.choice("12345"),
                rng.choice(("01", "10", "11")), rng.choice(("0301", "4601", "5001")), inn, ut,
                ref, f"{rng.randrange(900):03d}", "1", line))  # fmt: skip
            line += 1
            for d in range(rng.choice((1, 1, 2))):
                rows["diagnoses"].append((sid, unit, YEAR, pas, epi, d + 1,
                                          f"S{rng.randrange(100):02d}", "ICD-10"))  # fmt: skip
            for p in range(rng.choice((0, 1, 2))):
                code = f"NC{rng.randrange(1000):03d}"
                rows["procedures"].append((sid, unit, YEAR, pas, epi, p + 1, code, "NCSP",
                                           inn.date()))  # fmt: skip
        for r in range(rng.choice((0, 1, 1, 2))):
            mottatt = (start + dt.timedelta(days=rng.randrange(60))).date()
            rows["referrals"].append((sid, unit, YEAR, f"P{rng.randrange(10**8):08d}",
                f"R{i}-{r}", unit, "010", mottatt, mottatt, mottatt + dt.timedelta(days=7),
                mottatt + dt.timedelta(days=60), None, None, None, "1", line))  # fmt: skip
            line += 1
        rows["ledger"] = [(sid, f"sha256:{rng.getrandbits(128):032x}", f"{unit}-{sid}.xml",
            rng.randrange(2_000, 40_000), f"{DAY}T12:00:00", "accepted", unit, f"H{unit}",
            f"9{unit}", "ord", "1.0", YEAR, "2026-01-01", str(DAY), f"{DAY}T02:00:00",
            DAY.timetuple().tm_yday, "NPR", n_ep, n_ep, "")]  # fmt: skip
        out.append(rows)
    return out


def batch_tables(files: list[dict[str, list[tuple]]]) -> dict[str, pa.Table]:
    """One intake batch of files as an Arrow table per lake table (and the ledger)."""
    schemas = {**SCHEMAS, "ledger": LEDGER_SCHEMA}
    out = {}
    for table, schema in schemas.items():
        rows = [r for f in files for r in f[table]]
        cols = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
        out[table] = pa.table([pa.array(c, type=f.type) for c, f in zip(cols, schema,
                                                                         strict=True)],
                              schema=schema)  # fmt: skip
    return out


def batches(n_commits: int, files_per: int, seed: int) -> list[dict[str, pa.Table]]:
    files = make_files(n_commits * files_per, seed)
    return [batch_tables(files[i * files_per : (i + 1) * files_per]) for i in range(n_commits)]


def normal(table: pa.Table) -> pa.Table:
    """Rows in one order and one set of types, so two readers' answers compare with equals."""
    fields = []
    for f in table.schema:
        ty = f.type
        if pa.types.is_timestamp(ty):
            ty = pa.timestamp("us")
        elif pa.types.is_large_string(ty) or pa.types.is_string_view(ty):
            ty = pa.string()
        fields.append(pa.field(f.name, ty))
    order = [(c, "ascending") for c in ("submission_id", "line") if c in table.column_names]
    return table.select(sorted(table.column_names)).cast(
        pa.schema(sorted(fields, key=lambda f: f.name))
    ).sort_by(order).combine_chunks()  # fmt: skip


def period_filter_pa() -> ds.Expression:
    lo, hi = (pa.scalar(t, pa.timestamp("s")) for t in WINDOW)
    return (
        (ds.field("year") == YEAR) & (ds.field("innDatoTid") >= lo) & (ds.field("innDatoTid") < hi)
    )


PERIOD_SQL = (
    f"year = {YEAR} AND \"innDatoTid\" >= TIMESTAMP '{WINDOW[0]}' "
    f"AND \"innDatoTid\" < TIMESTAMP '{WINDOW[1]}'"
)


def tree(path: Path) -> tuple[int, int]:
    """Files and bytes under a directory."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def size(*paths: Path) -> int:
    total = 0
    for p in paths:
        if p.is_dir():
            total += tree(p)[1]
        elif p.exists():
            total += p.stat().st_size
    return total


def ext_path(package: str, name: str) -> str:
    """A DuckDB extension binary shipped in a PyPI package (autoload would try the network)."""
    mod = __import__(package)
    return glob.glob(f"{os.path.dirname(mod.__file__)}/extensions/*/{name}.duckdb_extension")[0]


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


# ---------------------------------------------------------------- candidates


class Delta:
    name = "delta"

    def __init__(self, root: Path) -> None:
        from deltalake import DeltaTable, write_deltalake

        self.root, self.DeltaTable, self.write = root, DeltaTable, write_deltalake

    def uri(self, table: str) -> str:
        return str(self.root / table)

    def commit(self, batch: dict[str, pa.Table], tables=tuple(TABLES)) -> None:
        for t in tables:  # no multi-table transaction: one commit per table
            self.write(self.uri(t), batch[t], mode="append", partition_by=["year"])

    def snapshot(self) -> dict[str, int]:
        return {t: self.DeltaTable(self.uri(t)).version() for t in TABLES}

    def catalog_bytes(self) -> int:
        return size(*(self.root / t / "_delta_log" for t in TABLES))

    def read(self, table: str = "episodes", snap: dict | None = None, period: bool = True):
        dtab = self.DeltaTable(self.uri(table), version=None if snap is None else snap[table])
        return dtab.to_pyarrow_dataset().to_table(filter=period_filter_pa() if period else None)

    def read_second(self, table: str = "episodes", snap: dict | None = None):
        """DataFusion SQL through deltalake's QueryBuilder (the log read by delta-rs)."""
        from deltalake import QueryBuilder

        dtab = self.DeltaTable(self.uri(table), version=None if snap is None else snap[table])
        q = QueryBuilder().register("t", dtab).execute(f"SELECT * FROM t WHERE {PERIOD_SQL}")
        return pa.table(q.read_all())

    def read_duckdb(self, table: str = "episodes"):
        con = duckdb.connect()
        con.execute(f"LOAD '{ext_path('duckdb_extension_delta', 'delta')}'")
        return con.execute(
            f"SELECT * FROM delta_scan('{self.uri(table)}') WHERE {PERIOD_SQL}"
        ).to_arrow_table()

    def compact(self) -> None:
        for t in TABLES:
            self.DeltaTable(self.uri(t)).optimize.compact()

    def cleanup(self) -> None:
        for t in TABLES:
            dtab = self.DeltaTable(self.uri(t))
            dtab.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
            dtab.create_checkpoint()
            dtab.cleanup_metadata()

    def close(self) -> None:
        pass


class Iceberg:
    name = "iceberg"

    def __init__(self, root: Path) -> None:
        from pyiceberg.catalog.sql import SqlCatalog

        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.cat = SqlCatalog(
            "npr", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}/warehouse"
        )
        with contextlib.suppress(Exception):
            self.cat.create_namespace("npr")
        self.tables = {}

    def table(self, t: str, schema: pa.Schema | None = None):
        if t not in self.tables:
            from pyiceberg.transforms import IdentityTransform

            if not self.cat.table_exists(f"npr.{t}"):
                tab = self.cat.create_table(f"npr.{t}", schema=schema)
                with tab.update_spec() as spec:
                    spec.add_field("year", IdentityTransform(), "year")
            self.tables[t] = self.cat.load_table(f"npr.{t}")
        return self.tables[t]

    def commit(self, batch: dict[str, pa.Table], tables=tuple(TABLES)) -> None:
        for t in tables:  # one commit per table
            self.table(t, batch[t].schema).append(batch[t])

    def snapshot(self) -> dict[str, int]:
        return {t: self.table(t).refresh().current_snapshot().snapshot_id for t in TABLES}

    def catalog_bytes(self) -> int:
        metas = [p for p in (self.root / "warehouse").rglob("metadata") if p.is_dir()]
        return size(self.root / "catalog.db", *metas)

    def scan(self, table: str, snap: dict | None, period: bool = True):
        from pyiceberg.expressions import And, EqualTo, GreaterThanOrEqual, LessThan

        row_filter = (
            And(
                EqualTo("year", YEAR),
                GreaterThanOrEqual("innDatoTid", WINDOW[0].isoformat()),
                LessThan("innDatoTid", WINDOW[1].isoformat()),
            )
            if period
            else None
        )
        tab = self.table(table).refresh()
        kwargs = {"snapshot_id": snap[table]} if snap else {}
        return tab.scan(row_filter=row_filter, **kwargs) if period else tab.scan(**kwargs)

    def read(self, table: str = "episodes", snap: dict | None = None, period: bool = True):
        return self.scan(table, snap, period).to_arrow()

    def read_second(self, table: str = "episodes", snap: dict | None = None):
        """pyarrow.dataset over the data files the Iceberg metadata lists (append-only)."""
        paths = [t.file.file_path.removeprefix("file://") for t in self.scan(table, snap, False)
                 .plan_files()]  # fmt: skip
        return ds.dataset(paths, format="parquet").to_table(filter=period_filter_pa())

    def read_duckdb(self, table: str = "episodes"):
        con = duckdb.connect()
        con.execute(f"LOAD '{ext_path('duckdb_extension_avro', 'avro')}'")  # iceberg needs it
        con.execute(f"LOAD '{ext_path('duckdb_extension_iceberg', 'iceberg')}'")
        meta = self.table(table).refresh().metadata_location
        return con.execute(
            f"SELECT * FROM iceberg_scan('{meta}') WHERE {PERIOD_SQL}"
        ).to_arrow_table()

    def compact(self) -> None:
        """pyiceberg 0.12 has no rewrite_data_files: rewrite each table with its own rows."""
        for t in TABLES:
            tab = self.table(t).refresh()
            tab.overwrite(tab.scan().to_arrow())

    def cleanup(self) -> None:
        for t in TABLES:
            tab = self.table(t).refresh()
            current = tab.current_snapshot().snapshot_id
            old = [s.snapshot_id for s in tab.snapshots() if s.snapshot_id != current]
            if old:
                tab.maintenance.expire_snapshots().by_ids(old).commit()

    def close(self) -> None:
        self.cat.engine.dispose()


class DuckLake:
    name = "ducklake"

    def __init__(self, root: Path, catalog: str = "duckdb") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root, self.catalog_kind = root, catalog
        self.con = duckdb.connect()
        self.con.execute(f"LOAD '{ext_path('duckdb_extension_ducklake', 'ducklake')}'")
        if catalog == "sqlite":
            # the package ships sqlite.duckdb_extension; its entry point is sqlite_scanner's
            scanner = root.parent / "sqlite_scanner.duckdb_extension"
            if not scanner.exists():
                shutil.copy(ext_path("duckdb_extension_sqlite", "sqlite"), scanner)
            self.con.execute(f"LOAD '{scanner}'")
            self.meta = root / "meta.sqlite"
            spec = f"ducklake:sqlite:{self.meta}"
        else:
            self.meta = root / "meta.ducklake"
            spec = f"ducklake:{self.meta}"
        self.con.execute(f"ATTACH '{spec}' AS lake (DATA_PATH '{root}/data/')")

    def ensure(self, t: str, tab: pa.Table) -> None:
        have = {r[0] for r in self.con.execute("SHOW TABLES FROM lake").fetchall()}
        if t not in have:
            self.con.register("src", tab)
            self.con.execute(f"CREATE TABLE lake.{t} AS SELECT * FROM src LIMIT 0")
            self.con.execute(f"ALTER TABLE lake.{t} SET PARTITIONED BY (year)")
            self.con.unregister("src")

    def commit(self, batch: dict[str, pa.Table], tables=tuple(TABLES)) -> None:
        for t in tables:
            self.ensure(t, batch[t])
        self.con.execute("BEGIN")  # one transaction, one snapshot, for every table of the batch
        for t in tables:
            self.con.register(f"b_{t}", batch[t])
            self.con.execute(f"INSERT INTO lake.{t} SELECT * FROM b_{t}")
        self.con.execute("COMMIT")
        for t in tables:
            self.con.unregister(f"b_{t}")

    def snapshot(self) -> int:
        return self.con.execute("SELECT id FROM lake.current_snapshot()").fetchone()[0]

    def catalog_bytes(self) -> int:
        return size(self.meta, Path(f"{self.meta}.wal"))

    def read(self, table: str = "episodes", snap: int | None = None, period: bool = True):
        at = f" AT (VERSION => {snap})" if snap is not None else ""
        where = f" WHERE {PERIOD_SQL}" if period else ""
        return self.con.execute(f"SELECT * FROM lake.{table}{at}{where}").to_arrow_table()

    def data_files(self, table: str, snap: int | None = None) -> list[str]:
        args = f", snapshot_version => {snap}" if snap is not None else ""
        sql = f"SELECT data_file FROM ducklake_list_files('lake', '{table}'{args})"
        return [r[0] for r in self.con.execute(sql).fetchall()]

    def read_second(self, table: str = "episodes", snap: int | None = None):
        """pyarrow.dataset over the Parquet files the catalog lists (no inlined rows, no
        deletes here: the catalog says which files, the files hold the rows)."""
        return ds.dataset(self.data_files(table, snap), format="parquet").to_table(
            filter=period_filter_pa()
        )

    def compact(self) -> None:
        self.con.execute("CALL ducklake_flush_inlined_data('lake')")
        self.con.execute("CALL ducklake_merge_adjacent_files('lake')")

    def cleanup(self) -> None:
        self.con.execute("CALL ducklake_expire_snapshots('lake', older_than => now())")
        self.con.execute("CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")

    def close(self) -> None:
        self.con.close()


CANDIDATES = {"delta": Delta, "iceberg": Iceberg, "ducklake": DuckLake}


def versions() -> dict[str, str]:
    import deltalake
    import pyiceberg
    import sqlalchemy

    out = {
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "duckdb": duckdb.__version__,
        "deltalake": deltalake.__version__,
        "pyiceberg": pyiceberg.__version__,
        "sqlalchemy": sqlalchemy.__version__,
    }
    for pkg in ("duckdb-extension-ducklake", "duckdb-extension-delta", "duckdb-extension-avro",
                "duckdb-extension-iceberg", "duckdb-extension-sqlite"):  # fmt: skip
        from importlib.metadata import version

        with contextlib.suppress(Exception):
            out[pkg] = version(pkg)
    return out


# ---------------------------------------------------------------- measurements


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def commits(cand: str, root: Path, data: list[dict[str, pa.Table]]) -> tuple:
    """Append every batch as one commit (per table for Delta and Iceberg)."""
    store = CANDIDATES[cand](fresh(root))
    times, snaps = [], []
    for b in data:
        t, _ = timed(store.commit, b)
        times.append(t)
        snaps.append(store.snapshot())
    files, total = tree(root)
    out = {
        "total_s": sum(times),
        "commit_ms_median": 1000 * statistics.median(times),
        "commit_ms_first20": 1000 * statistics.median(times[:20]),
        "commit_ms_last20": 1000 * statistics.median(times[-20:]),
        "files": files,
        "bytes": total,
        "catalog_bytes": store.catalog_bytes(),
        "rows": sum(b[t].num_rows for b in data for t in TABLES),
    }
    return out, store, snaps


def exp_commit(cand: str, out: Path, data) -> dict:
    res, store, _ = commits(cand, out / f"{cand}-commit", data)
    store.close()
    return res


def exp_day(cand: str, out: Path, data, truth_half: pa.Table, truth_full: pa.Table) -> dict:
    """A national day, its reads and time travel, compaction, reads again, clean-up."""
    root = out / f"{cand}-day"
    res, store, snaps = commits(cand, root, data)
    half = snaps[len(snaps) // 2 - 1]
    res["read_period_s"], got = timed(store.read)
    res["read_period_rows"] = got.num_rows
    res["read_period_equal"] = normal(got).equals(truth_full)
    res["travel_s"], old = timed(store.read, "episodes", half)
    res["travel_equal"] = normal(old).equals(truth_half)
    res["compact_s"], _ = timed(store.compact)
    res["files_after_compact"], res["bytes_after_compact"] = tree(root)
    res["read_after_compact_s"], got = timed(store.read)
    res["read_after_compact_equal"] = normal(got).equals(truth_full)
    res["travel_after_compact_s"], old = timed(store.read, "episodes", half)
    res["travel_after_compact_equal"] = normal(old).equals(truth_half)
    res["cleanup_s"], _ = timed(store.cleanup)
    res["files_after_cleanup"], res["bytes_after_cleanup"] = tree(root)
    res["catalog_bytes_after_cleanup"] = store.catalog_bytes()
    res["read_after_cleanup_s"], got = timed(store.read)
    res["read_after_cleanup_equal"] = normal(got).equals(truth_full)
    try:
        old = store.read("episodes", half)
        res["travel_after_cleanup"] = "equal" if normal(old).equals(truth_half) else "differs"
    except Exception as problem:
        res["travel_after_cleanup"] = f"fails: {type(problem).__name__}"
    store.close()
    return res


def exp_readers(cand: str, out: Path, data, truth_full: pa.Table) -> dict:
    """The same rows through a second (and third) Python reader, before compaction."""
    res, store, _ = commits(cand, out / f"{cand}-readers", data)
    first = normal(store.read())
    res = {"first_equal_truth": first.equals(truth_full)}
    t, got = timed(store.read_second)
    res["second_reader_s"], res["second_equal"] = t, normal(got).equals(first)
    if hasattr(store, "read_duckdb"):
        try:
            t, got = timed(store.read_duckdb)
            res["duckdb_reader_s"], res["duckdb_equal"] = t, normal(got).equals(first)
        except Exception as problem:
            res["duckdb_reader"] = f"fails: {type(problem).__name__}: {str(problem)[:120]}"
    counts = {}
    for t in TABLES:
        counts[t] = store.read(t, None, period=False).num_rows
    res["full_counts_equal"] = counts == {t: sum(b[t].num_rows for b in data) for t in TABLES}
    store.close()
    return res


# -- the ledger


def sample_ids(data) -> list[str]:
    """500 received files' ids spread over the day (the "received before?" question)."""
    ids = [sid for b in data for sid in b["ledger"]["submission_id"].to_pylist()]
    return ids[:: max(1, len(ids) // 500)][:500]


def ledger_delta(root: Path, data) -> dict:
    from deltalake import DeltaTable, write_deltalake

    uri = str(fresh(root) / "ledger")
    write_deltalake(uri, data[0]["ledger"], mode="append")
    pred = " AND ".join(f"t.{k} = s.{k}" for k in LEDGER_KEY)

    def insert(tab: pa.Table, table=None) -> int:
        m = (table or DeltaTable(uri)).merge(tab, pred, source_alias="s", target_alias="t")
        return m.when_not_matched_insert_all().execute()["num_target_rows_inserted"]

    times = [timed(insert, b["ledger"])[0] for b in data[1:]]
    res = {"insert_ms_median": 1000 * statistics.median(times), "insert_total_s": sum(times)}
    res["rows"] = DeltaTable(uri).count()
    res["duplicate_batch_inserted"] = insert(data[0]["ledger"])
    ids = sample_ids(data)

    def lookup() -> int:
        dset = DeltaTable(uri).to_pyarrow_dataset()
        typed = pa.array(ids, type=dset.schema.field("submission_id").type)
        return dset.to_table(filter=pc.field("submission_id").isin(typed)).num_rows

    res["lookup_500_ms"], res["lookup_500_found"] = timed(lookup)
    res["lookup_500_ms"] *= 1000
    # two writers that both loaded the table before either committed (a race made certain)
    a, b = DeltaTable(uri), DeltaTable(uri)
    new = data[-1]["ledger"].slice(0, 1).to_pylist()[0]
    new = pa.Table.from_pylist([{**new, "submission_id": "race", "lopenr": 999}], LEDGER_SCHEMA)
    insert(new, a)
    try:
        n = insert(new, b)
        res["stale_second_writer"] = f"committed, inserted {n}"
    except Exception as problem:
        res["stale_second_writer"] = f"refused: {type(problem).__name__}"
    dup = DeltaTable(uri).to_pyarrow_dataset().to_table(filter=pc.field("lopenr") == 999)
    res["race_rows_for_key"] = dup.num_rows
    res["unique_constraint"] = "no (CHECK constraints only); MERGE insert-if-absent"
    return res


def ledger_iceberg(root: Path, data) -> dict:
    from pyiceberg.expressions import EqualTo, In

    store = Iceberg(fresh(root))
    store.table("ledger", LEDGER_SCHEMA).append(data[0]["ledger"])

    def insert(tab: pa.Table, table=None) -> int:
        t = table or store.table("ledger").refresh()
        r = t.upsert(tab, join_cols=list(LEDGER_KEY), when_matched_update_all=False)
        return r.rows_inserted

    times = [timed(insert, b["ledger"])[0] for b in data[1:]]
    res = {"insert_ms_median": 1000 * statistics.median(times), "insert_total_s": sum(times)}
    tab = store.table("ledger").refresh()
    res["rows"] = tab.scan().to_arrow().num_rows
    res["duplicate_batch_inserted"] = insert(data[0]["ledger"])
    ids = set(sample_ids(data))
    res["lookup_500_ms"], found = timed(
        lambda: store.table("ledger").refresh().scan(row_filter=In("submission_id", ids)).to_arrow()
    )
    res["lookup_500_ms"] *= 1000
    res["lookup_500_found"] = found.num_rows
    a = store.cat.load_table("npr.ledger")
    b = store.cat.load_table("npr.ledger")
    new = data[-1]["ledger"].slice(0, 1).to_pylist()[0]
    new = pa.Table.from_pylist([{**new, "submission_id": "race", "lopenr": 999}], LEDGER_SCHEMA)
    insert(new, a)
    try:
        n = insert(new, b)
        res["stale_second_writer"] = f"committed, inserted {n}"
    except Exception as problem:
        res["stale_second_writer"] = f"refused: {type(problem).__name__}"
    res["race_rows_for_key"] = (
        store.table("ledger").refresh().scan(row_filter=EqualTo("lopenr", 999)).to_arrow().num_rows
    )
    res["unique_constraint"] = "no (identifier fields are not enforced); upsert insert-if-absent"
    store.close()
    return res


def ledger_ducklake(root: Path, data) -> dict:
    store = DuckLake(fresh(root))
    con = store.con
    res = {}
    try:
        con.execute(
            "CREATE TABLE lake.probe (unit VARCHAR, lopenr BIGINT, PRIMARY KEY (unit, lopenr))"
        )
        res["unique_constraint"] = "accepted"
    except Exception as problem:
        res["unique_constraint"] = f"no: {str(problem).splitlines()[0][:90]}"
    store.ensure("ledger", data[0]["ledger"])
    cond = " AND ".join(f"l.{k} = b.{k}" for k in LEDGER_KEY)

    def insert(tab: pa.Table, c=con, begin=True) -> int:
        c.register("b", tab)
        if begin:
            c.execute("BEGIN")
        n = c.execute(
            f"INSERT INTO lake.ledger SELECT * FROM b WHERE NOT EXISTS "
            f"(SELECT 1 FROM lake.ledger l WHERE {cond})"
        ).fetchone()[0]
        if begin:
            c.execute("COMMIT")
        c.unregister("b")
        return n

    times = [timed(insert, b["ledger"])[0] for b in data]
    res |= {"insert_ms_median": 1000 * statistics.median(times), "insert_total_s": sum(times)}
    res["rows"] = con.execute("SELECT count(*) FROM lake.ledger").fetchone()[0]
    res["duplicate_batch_inserted"] = insert(data[0]["ledger"])
    con.register("ids", pa.table({"id": sample_ids(data)}))
    res["lookup_500_ms"], found = timed(lambda: con.execute(
        "SELECT submission_id FROM lake.ledger WHERE submission_id IN (SELECT id FROM ids)"
    ).fetchall())  # fmt: skip
    res["lookup_500_ms"] *= 1000
    res["lookup_500_found"] = len(found)
    # two transactions interleaved in one process (two connections to one attached lake)
    new = data[-1]["ledger"].slice(0, 1).to_pylist()[0]
    new = pa.Table.from_pylist([{**new, "submission_id": "race", "lopenr": 999}], LEDGER_SCHEMA)
    a, b = con.cursor(), con.cursor()
    a.execute("BEGIN")
    b.execute("BEGIN")
    insert(new, a, begin=False)
    insert(new, b, begin=False)
    a.execute("COMMIT")
    try:
        b.execute("COMMIT")
        res["stale_second_writer"] = "committed"
    except Exception as problem:
        res["stale_second_writer"] = f"refused: {type(problem).__name__}"
    res["race_rows_for_key"] = con.execute(
        "SELECT count(*) FROM lake.ledger WHERE lopenr = 999"
    ).fetchone()[0]
    store.close()
    return res


def ledger_duckdb(root: Path, data) -> dict:
    path = fresh(root) / "state.duckdb"
    con = duckdb.connect(str(path))
    cols = ", ".join(f'"{n}" {"BIGINT" if t == I64 else "VARCHAR"}' for n, t in LEDGER)
    con.execute(
        f"CREATE TABLE ledger ({cols}, PRIMARY KEY (submission_id), "
        f"UNIQUE ({', '.join(LEDGER_KEY)}))"
    )

    def insert(tab: pa.Table, c=con, begin=True) -> int:
        c.register("b", tab)
        if begin:
            c.execute("BEGIN")
        n = c.execute("INSERT INTO ledger SELECT * FROM b").fetchone()[0]
        if begin:
            c.execute("COMMIT")
        c.unregister("b")
        return n

    times = [timed(insert, b["ledger"])[0] for b in data]
    res = {"insert_ms_median": 1000 * statistics.median(times), "insert_total_s": sum(times)}
    res["rows"] = con.execute("SELECT count(*) FROM ledger").fetchone()[0]
    try:
        insert(data[0]["ledger"])
        res["duplicate_batch_inserted"] = "inserted"
    except duckdb.ConstraintException:
        con.execute("ROLLBACK")
        res["duplicate_batch_inserted"] = 0
        res["duplicate_batch"] = "refused whole (ConstraintException), 0 rows"
    con.register("ids", pa.table({"id": sample_ids(data)}))
    res["lookup_500_ms"], found = timed(lambda: con.execute(
        "SELECT submission_id FROM ledger WHERE submission_id IN (SELECT id FROM ids)"
    ).fetchall())  # fmt: skip
    res["lookup_500_ms"] *= 1000
    res["lookup_500_found"] = len(found)
    new = data[-1]["ledger"].slice(0, 1).to_pylist()[0]
    new = pa.Table.from_pylist([{**new, "submission_id": "race", "lopenr": 999}], LEDGER_SCHEMA)
    a, b = con.cursor(), con.cursor()
    a.execute("BEGIN")
    b.execute("BEGIN")
    insert(new, a, begin=False)
    try:
        insert(new, b, begin=False)
        a.execute("COMMIT")
        b.execute("COMMIT")
        res["stale_second_writer"] = "committed"
    except Exception as problem:
        res["stale_second_writer"] = f"refused: {type(problem).__name__}"
        with contextlib.suppress(Exception):
            a.execute("COMMIT")
        with contextlib.suppress(Exception):
            b.execute("ROLLBACK")
    res["race_rows_for_key"] = con.execute(
        "SELECT count(*) FROM ledger WHERE lopenr = 999"
    ).fetchone()[0]
    res["unique_constraint"] = "PRIMARY KEY + UNIQUE (unit, message_type, year, lopenr)"
    con.close()
    res["file_bytes"] = path.stat().st_size
    return res


LEDGERS = {
    "delta": ledger_delta,
    "iceberg": ledger_iceberg,
    "ducklake": ledger_ducklake,
    "duckdb": ledger_duckdb,
}


# -- two processes at once


def child(cand: str, root: str, seed: int, n: int, start_at: float) -> None:
    """A second process appending ``n`` batches to the same tables (prints a JSON report)."""
    data = batches(n, 50, seed)
    report = {"ok": 0, "errors": [], "retries": 0}
    store = None
    while time.time() < start_at:
        time.sleep(0.005)
    try:
        if cand == "ducklake-sqlite":
            store = DuckLake(Path(root), "sqlite")
        elif cand == "duckdb":
            store = duckdb.connect(f"{root}/state.duckdb")
        else:
            store = CANDIDATES[cand](Path(root))
    except Exception as problem:
        report["errors"].append(f"open: {type(problem).__name__}: {str(problem)[:160]}")
        print(json.dumps(report))
        return
    for b in data:
        for attempt in range(20):
            try:
                if cand == "duckdb":
                    store.register("b", b["episodes"])
                    store.execute("INSERT INTO episodes SELECT * FROM b")
                else:
                    store.commit(b, tables=("episodes",))
                report["ok"] += 1
                break
            except Exception as problem:
                msg = f"{type(problem).__name__}: {str(problem).splitlines()[0][:120]}"
                if msg not in report["errors"]:
                    report["errors"].append(msg)
                report["retries"] += 1
                if cand == "iceberg":
                    store.tables.pop("episodes", None)
                time.sleep(0.05 * (attempt + 1))
    print(json.dumps(report))


def exp_concurrency(cand: str, out: Path, n: int = 20) -> dict:
    root = fresh(out / f"{cand}-race")
    seed_data = batches(1, 50, 7)[0]
    if cand == "ducklake-sqlite":
        s = DuckLake(root, "sqlite")
        s.commit(seed_data, tables=("episodes",))
        s.close()
    elif cand == "duckdb":
        con = duckdb.connect(str(root / "state.duckdb"))
        con.register("b", seed_data["episodes"])
        con.execute("CREATE TABLE episodes AS SELECT * FROM b")
        con.close()
    else:
        s = CANDIDATES[cand](root)
        s.commit(seed_data, tables=("episodes",))
        s.close()
    start_at = time.time() + 3
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                cand,
                str(root),
                str(seed),
                str(n),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for seed in (11, 12)
    ]
    reports = []
    for p in procs:
        o, e = p.communicate(timeout=600)
        try:
            reports.append(json.loads(o.strip().splitlines()[-1]))
        except Exception:
            reports.append({"crash": e[-300:]})
    expected = seed_data["episodes"].num_rows + sum(
        sum(b["episodes"].num_rows for b in batches(r.get("ok", 0), 50, seed))
        for r, seed in zip(reports, (11, 12), strict=True)
    )
    try:
        if cand == "ducklake-sqlite":
            s = DuckLake(root, "sqlite")
            rows = s.con.execute("SELECT count(*) FROM lake.episodes").fetchone()[0]
            s.close()
        elif cand == "duckdb":
            con = duckdb.connect(str(root / "state.duckdb"))
            rows = con.execute("SELECT count(*) FROM episodes").fetchone()[0]
            con.close()
        else:
            s = CANDIDATES[cand](root)
            rows = s.read("episodes", None, period=False).num_rows
            s.close()
        verdict = "intact" if rows == expected else f"rows {rows} != expected {expected}"
    except Exception as problem:
        verdict = f"unreadable: {type(problem).__name__}"
    return {"processes": reports, "table_after": verdict}


# ---------------------------------------------------------------- main


def med(runs: list[dict]) -> dict:
    """Per key: the median over runs of numbers, the set of distinct other values."""
    out = {}
    for k in runs[0]:
        vals = [r.get(k) for r in runs]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            out[k] = statistics.median(vals)
        else:
            distinct = {json.dumps(v, sort_keys=True, default=str) for v in vals}
            out[k] = vals[0] if len(distinct) == 1 else vals
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path(".bench/storage"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--candidates", default="delta,iceberg,ducklake")
    p.add_argument("--only", default="commit,day,readers,ledger,race")
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the sizes (smoke runs)")
    p.add_argument("--child", nargs=5)
    args = p.parse_args()
    if args.child:
        cand, root, seed, n, start_at = args.child
        child(cand, root, int(seed), int(n), float(start_at))
        return
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    cands, only = args.candidates.split(","), args.only.split(",")
    n_commit, n_day = max(4, int(200 * args.scale)), max(4, int(130 * args.scale))
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["meta"] = {
        "versions": versions(),
        "schemas": check_schemas(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
        "note": "shared machine: other engineers ran test suites at the same time",
        "repeats": args.repeats,
        "scale": args.scale,
    }

    def save() -> None:
        results_path.write_text(json.dumps(results, indent=2, default=str))

    print("generating data", flush=True)
    commit_data = batches(n_commit, 300, 1) if "commit" in only else None
    day_data = batches(n_day, 500, 2) if {"day", "readers", "ledger"} & set(only) else None
    if day_data:
        full = pa.concat_tables(b["episodes"] for b in day_data)
        half = pa.concat_tables(b["episodes"] for b in day_data[: n_day // 2])
        truth_full = normal(full.filter(period_filter_pa()))
        truth_half = normal(half.filter(period_filter_pa()))
    for cand in cands:
        runs, slow = {}, {}
        for rep in range(args.repeats):
            work = out / "work"
            if "commit" in only and cand in CANDIDATES:
                runs.setdefault("commit", []).append(exp_commit(cand, work, commit_data))
            if "day" in only and cand in CANDIDATES:
                runs.setdefault("day", []).append(
                    exp_day(cand, work, day_data, truth_half, truth_full)
                )
            if "readers" in only and cand in CANDIDATES and rep == 0:
                runs.setdefault("readers", []).append(exp_readers(cand, work, day_data, truth_full))
            if "ledger" in only and cand in LEDGERS and (rep == 0 or not slow.get("ledger")):
                t, res = timed(LEDGERS[cand], work / f"{cand}-ledger", day_data)
                runs.setdefault("ledger", []).append(res)
                slow["ledger"] = t > 300  # repeated only when a run takes under 5 minutes
            if "race" in only and rep == 0:
                runs.setdefault("race", []).append(exp_concurrency(cand, work))
            print(cand, rep, {k: v[-1] for k, v in runs.items()}, flush=True)
            shutil.rmtree(work, ignore_errors=True)
        for k, v in runs.items():
            results.setdefault(k, {})[cand] = med(v) | {"runs": v}
        save()
    (out / "results.md").write_text(summary(results))
    print(summary(results))


def summary(results: dict) -> str:
    lines = ["# Storage candidates", "", "```", json.dumps(results["meta"], indent=2), "```"]
    for section in ("commit", "day", "readers", "ledger", "race"):
        if section not in results:
            continue
        lines += ["", f"## {section}", ""]
        cands = list(results[section])
        keys = [k for k in results[section][cands[0]] if k != "runs"]
        for c in cands[1:]:
            keys += [k for k in results[section][c] if k not in keys and k != "runs"]
        lines += ["| | " + " | ".join(cands) + " |", "|---" * (len(cands) + 1) + "|"]
        for k in keys:
            cells = []
            for c in cands:
                v = results[section][c].get(k, "")
                cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
