"""The main process's memory on a long daily intake: what it holds must not grow with the inbox.

A national day is ~37,000 daily files; the main process must stay well under 1 GiB (issue 13).
Each worker's outcome carries the file's read rows; the main process may hold only a bounded
number of them at once, not a whole pool generation's (2,048 files) until it ends.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from npr_pipeline.home import Home
from npr_pipeline.intake import run as intake_run
from npr_pipeline.intake.reasons import Status
from tests.daily_events import kontakt
from tests.intake_files import fill_inbox
from tests.test_intake_daily import DAILY, Files, _home

FILES = 12
WORKERS = 2


def test_files_in_flight_are_bounded_while_the_main_process_commits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At every committed file, at most ``workers * IN_FLIGHT`` files, and the chunk that
    reached the bound, are taken (archived and submitted) and not yet committed; before the
    bound, all 12 were taken (and their rows held) before the first commit."""
    monkeypatch.setattr(intake_run, "IN_FLIGHT", 1)
    monkeypatch.setattr(intake_run, "CHUNK_FILES", 2)
    home = _home(tmp_path, {DAILY.resh})
    new = Files(tmp_path / "files")
    paths = [new("kontakt", kontakt(f"K-{k}", "N", "2026-03-01T10:00:00")) for k in range(FILES)]
    inbox = fill_inbox(tmp_path / "inbox", paths)
    archived: list[str] = []
    ahead: list[int] = []
    real_archive = intake_run.archive_file

    def counted(path: Path, *args: object, **kwargs: object) -> object:
        archived.append(path.name)
        return real_archive(path, *args, **kwargs)  # type: ignore[arg-type]

    def progress(done: int) -> None:
        ahead.append(len(archived) - len(ahead) - done)

    monkeypatch.setattr(intake_run, "archive_file", counted)
    summary = intake_run.intake_directory(
        Home(root=home.root), inbox, workers=WORKERS, progress=progress
    )
    assert [s.status for s in summary.submissions] == [Status.ACCEPTED] * FILES
    assert len(ahead) == FILES
    assert max(ahead) <= WORKERS * intake_run.IN_FLIGHT + intake_run.CHUNK_FILES
