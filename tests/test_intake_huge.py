"""A file over the default size limit (1 GiB) through ``npr intake`` as a unit's transfer
would bring it: refused as ``too_large`` before any parse, kept in the archive byte for byte
(nothing received is ever lost), the other unit's file in the same inbox accepted, and the
whole run within the memory the register allows (issue 14: peak under 1 GiB).

The limit's path is the HOME's settings (no ``max_bytes`` argument); the file is sparse, so
the test costs the archive's copy and checksum of a gigabyte (seconds), and runs in make soak.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake.archive import archive_path
from npr_pipeline.settings import Settings
from npr_pipeline.store.ledger import load_records
from tests.intake_files import fill_inbox, make_year, prepare_test_home
from tests.soak import HUGE_TEST

NPR = Path(sys.executable).with_name("npr")
LIMIT = Settings().max_file_bytes
# The peak of the largest process of the run (intake and its readers), in KiB.
_PEAK = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stderr.write(done.stderr)
print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, done.stdout)
"""


@pytest.mark.soak
@HUGE_TEST
def test_a_file_over_the_default_limit_is_refused_kept_and_harms_nothing(tmp_path: Path) -> None:
    assert LIMIT == 1 << 30
    units = make_year(tmp_path / "year", units=1, through=1, episodes=4.0)
    (unit,) = units.values()
    good = unit.file("ord", 1)
    inbox = fill_inbox(tmp_path / "inbox", [good])
    huge = inbox / f"{unit.resh}_2026-02_ord.xml"
    with open(huge, "wb") as fh:  # a real header, then a transfer's worth of nothing
        fh.write(good.read_bytes()[:4096])
        fh.truncate(LIMIT + 1)
    home = prepare_test_home(Home(root=tmp_path / "home"), tmp_path / "year" / "registry.csv")

    command = [str(NPR), "--home", str(home.root), "intake", str(inbox), "--json"]
    run = subprocess.run([sys.executable, "-c", _PEAK, *command], capture_output=True,
                         text=True, timeout=900)  # fmt: skip
    code, peak_kib, out = run.stdout.split(" ", 2)
    assert code == "0", run.stderr
    doc = json.loads(out)
    by_file = {Path(s["file"]).name: s for s in doc["submissions"]}
    assert by_file[good.name]["status"] == "accepted"
    refused = by_file[huge.name]
    assert refused["status"] == "rejected"
    assert [r["code"] for r in refused["reasons"]] == ["too_large"]
    assert f"{LIMIT + 1:,} bytes > {LIMIT:,}" in refused["reasons"][0]["message"]
    (record,) = [r for r in load_records(home) if r.submission_id == refused["submission_id"]]
    kept = archive_path(home.archive, record.checksum)
    assert kept.stat().st_size == LIMIT + 1
    assert int(peak_kib) < 512 * 1024, f"peak {int(peak_kib) // 1024} MiB"
