"""Display files on request on the monthly route: intake writes the XML answers only, and the
HTML and CSV rendered when asked are the bytes intake wrote before (issue 14, "Speed").

``tests/display_golden/`` holds the display files intake itself wrote, at main 3f7fd4b (before
this change), for three submissions of ``tests/reader_golden/y2026`` received with the clock
below: an accepted ord whose content checks found nothing, a rejected ord (a schema error) and
an ord with content findings and their examples (``_with_findings`` below). Intake today must
render exactly those bytes on request, through ``npr feedback`` as a coordinator asks.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from npr_pipeline.cli import app
from npr_pipeline.feedback.reports import (
    MAX_FINDINGS,
    display_files,
    write_xpr_val,
)
from npr_pipeline.home import Home
from npr_pipeline.intake.reasons import reason
from npr_pipeline.intake.run import intake_directory
from tests.intake_files import prepare_test_home
from tests.test_feedback_reports import INFO

SOURCE = Path(__file__).parent / "reader_golden" / "y2026"
GOLDEN = Path(__file__).parent / "display_golden"
RECEIVED = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
FINDINGS_FILE = "4802960_2026-01_ord.xml"
DISPLAY = ("XPR_VAL.html", "XPR_VAL.csv", "XPR_ERR.html", "XPR_ERR.csv")


def _with_findings(data: bytes) -> bytes:
    """The January ord with unknown municipalities and an episode that ends before it starts."""
    assert data.count(b'komNrHjem="3434"') > 1
    assert b'utDatoTid="2026-01-08T13:40:00"' in data
    data = data.replace(b'komNrHjem="3434"', b'komNrHjem="9999"')
    return data.replace(b'utDatoTid="2026-01-08T13:40:00"', b'utDatoTid="2026-01-07T13:40:00"')


@pytest.fixture(scope="module")
def received(tmp_path_factory: pytest.TempPathFactory) -> tuple[Home, dict[str, str]]:
    """A HOME after intake of the golden year; submission ids by file name."""
    root = tmp_path_factory.mktemp("display")
    inbox = root / "inbox"
    inbox.mkdir()
    for packed in sorted(SOURCE.glob("*.xml.gz")):
        name = packed.name.removesuffix(".gz")
        data = gzip.decompress(packed.read_bytes())
        (inbox / name).write_bytes(_with_findings(data) if name == FINDINGS_FILE else data)
    home = prepare_test_home(Home(root=root / "home"), SOURCE / "registry.csv")
    summary = intake_directory(home, inbox, workers=1, clock=lambda: RECEIVED)
    return home, {s.file: s.submission_id for s in summary.submissions}


def _feedback(home: Home, name: str) -> dict:
    result = CliRunner().invoke(app, ["--home", str(home.root), "feedback", name, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_intake_writes_the_xml_answers_only(received) -> None:
    home, sids = received
    files = sorted(p.name for p in home.feedback.rglob("*") if p.is_file())
    assert files and set(files) == {"XPR_VAL.xml", "XPR_ERR.xml"}
    assert len(files) == len(sids) + len(list(home.feedback.rglob("XPR_ERR.xml")))


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()))
def test_npr_feedback_renders_the_bytes_intake_wrote_before(received, name: str) -> None:
    home, sids = received
    shown = _feedback(home, name)
    folder = home.feedback / sids[name]
    expected = sorted(p.name for p in (GOLDEN / name).iterdir())
    paths = {Path(p) for kind in shown["reports"].values() for p in kind.values()}
    assert sorted(p.name for p in paths if p.suffix != ".xml") == expected
    for path in paths:
        assert path.parent == folder and path.is_file()
        if path.suffix != ".xml":
            assert path.read_bytes() == (GOLDEN / name / path.name).read_bytes(), path
    if name == FINDINGS_FILE:
        rules = {f["rule"] for f in shown["findings"]}
        assert {"episode_dates_in_order", "episode_municipality_valid"} <= rules


def test_two_readers_at_once_each_see_whole_files(received, tmp_path: Path) -> None:
    """Readers racing on the same folder write the same bytes, atomically, and leave no
    temporary file behind."""
    home, sids = received
    folder = tmp_path / "answers"
    shutil.copytree(home.feedback / sids[FINDINGS_FILE], folder)
    for _ in range(5):
        for name in DISPLAY:
            (folder / name).unlink(missing_ok=True)
        seen = _race(folder, readers=4)
        assert len(seen) == 4 and all(paths == seen[0] for paths in seen)
        for path in seen[0]:
            assert path.read_bytes() == (GOLDEN / FINDINGS_FILE / path.name).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*DISPLAY, "XPR_ERR.xml", "XPR_VAL.xml"]
    )


def _race(folder: Path, readers: int) -> list[list[Path]]:
    """What ``readers`` threads, released together, each got from :func:`display_files`."""
    start = threading.Barrier(readers)

    def read() -> list[Path]:
        start.wait()
        return display_files(folder)

    with ThreadPoolExecutor(readers) as pool:
        return [f.result() for f in [pool.submit(read) for _ in range(readers)]]


def test_an_answer_written_again_is_rendered_again(tmp_path: Path) -> None:
    """A report written again (an XPR_ERR checked again once the ide arrived) removes the
    display files of the earlier one; one a reader rendered from the earlier XML while it was
    replaced carries that XML's time and is rendered again."""
    write_xpr_val(tmp_path, INFO, [reason("schema_error", "first", line=1)], display=False)
    first = display_files(tmp_path)[0]
    assert "first" in first.read_text(encoding="utf-8")
    write_xpr_val(tmp_path, INFO, [reason("schema_error", "second", line=2)], display=False)
    assert not first.exists()  # the writer removed what no longer matches its XML
    page = display_files(tmp_path)[0]
    assert "second" in page.read_text(encoding="utf-8")
    # a slow reader's page of the earlier XML, stamped with that XML's time, lands last
    earlier = (tmp_path / "XPR_VAL.xml").stat().st_mtime_ns - 10**9
    page.write_text("rendered from the earlier XML", encoding="utf-8")
    os.utime(page, ns=(earlier, earlier))
    assert "second" in display_files(tmp_path)[0].read_text(encoding="utf-8")


def test_a_cut_report_keeps_the_display_files_written_with_it(tmp_path: Path) -> None:
    """Past MAX_FINDINGS the XML cannot give the display files back: those written at once
    are kept, also when their times no longer match (copied, restored from a backup)."""
    extra = 3
    reasons = [reason("schema_error", f"error {i}", line=i) for i in range(MAX_FINDINGS + extra)]
    written = write_xpr_val(tmp_path, INFO, reasons, display=False)
    whole = {ext: written[ext].read_bytes() for ext in ("html", "csv")}
    assert display_files(tmp_path) == [written["html"], written["csv"]]
    os.utime(written["html"], ns=(0, 0))
    assert [p.read_bytes() for p in display_files(tmp_path)] == [whole["html"], whole["csv"]]
    assert f"{extra} more findings were not written".encode() in whole["html"]


def test_a_read_only_home_gets_its_display_files_elsewhere(received, tmp_path: Path) -> None:
    """Chosen: a reader who cannot write HOME (an auditor's read-only mount) still gets the
    display files, rendered into a new temporary folder; HOME is left as it was."""
    home, sids = received
    folder = tmp_path / "answers"
    shutil.copytree(home.feedback / sids[FINDINGS_FILE], folder)
    for name in DISPLAY:
        (folder / name).unlink(missing_ok=True)
    with _read_only(folder):
        paths = display_files(folder)
        assert sorted(p.name for p in folder.iterdir()) == ["XPR_ERR.xml", "XPR_VAL.xml"]
    assert [p.name for p in paths] == list(DISPLAY)
    assert len({p.parent for p in paths}) == 1 and paths[0].parent != folder
    for path in paths:
        assert path.read_bytes() == (GOLDEN / FINDINGS_FILE / path.name).read_bytes()
    shutil.rmtree(paths[0].parent)


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """``folder`` unwritable for this process: mode 0555, or as root (whom modes do not stop)
    the immutable attribute."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i not permitted: no way to make a folder read-only for root")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
