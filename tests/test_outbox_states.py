"""The outbox's states as rows of ``outbox_items`` (issues 13 and 14): a HOME that kept them
as JSON files imports them once and posts nothing twice; a run killed between a chunk's EDI
files and its rows leaves files whose rows the rerun writes."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from npr_pipeline.feedback import outbox as outbox_module
from npr_pipeline.feedback.deliver import deliver_answers
from npr_pipeline.feedback.states import json_folder, unsent_mails
from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.settings import load_settings
from npr_pipeline.store.ledger import load_records
from npr_pipeline.store.state import state_path
from tests.intake_files import fill_inbox, prepare_test_home
from tests.outbox_states import outbox_states


def _intake(small_year: Path, tmp_path: Path) -> Home:
    inbox = fill_inbox(tmp_path / "inbox", sorted((small_year / "inbox").glob("*_2026-03_*")))
    home = prepare_test_home(Home(root=tmp_path / "home"))
    intake_directory(home, inbox, workers=1)
    return home


def _edi_files(home: Home) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (home.root / "outbox" / "edi").glob("*.xml")}


def test_a_home_with_json_states_imports_them_once_and_posts_nothing_again(
    small_year: Path, tmp_path: Path
) -> None:
    home = _intake(small_year, tmp_path)
    states = outbox_states(home)
    assert states and {s["channel"] for s in states} == {"edi"}
    mail = {"id": "mail-0123456789abcdef01234567", "channel": "email", "state": "failed",
            "to": ["it@sykehus.example"], "unit": "974633574", "day": "2026-03-02",
            "file": "outbox/mail/mail-0123456789abcdef01234567.eml", "submissions": ["ab"],
            "attempts": [{"at": "2026-03-02T06:00:00+00:00", "error": "OSError: no"}]}  # fmt: skip
    # the HOME as the JSON outbox left it: a file per state, no table, no import marker
    json_folder(home).mkdir(parents=True)
    for state in [*states, mail]:
        text = json.dumps(state, ensure_ascii=False, indent=1)
        (json_folder(home) / f"{state['id']}.json").write_text(text, encoding="utf-8")
    with duckdb.connect(str(state_path(home))) as con:
        con.execute("DROP TABLE outbox_items")
        con.execute("DELETE FROM meta WHERE key = 'outbox_json_imported'")
    edi = _edi_files(home)

    deliver_answers(home, load_settings(home), [r.submission_id for r in load_records(home)])
    assert outbox_states(home) == sorted([*states, mail], key=lambda s: s["id"])
    assert _edi_files(home) == edi, "an imported message is not posted again"
    assert unsent_mails(home) == [mail]
    assert len(list(json_folder(home).glob("*.json"))) == len(states) + 1  # left, unread

    (json_folder(home) / f"{mail['id']}.json").unlink()  # imported once: the files are not read
    deliver_answers(home, load_settings(home), [])
    assert unsent_mails(home) == [mail]


def test_a_kill_between_the_edi_files_and_their_rows_is_completed_by_the_rerun(
    small_year: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*args: object) -> None:
        raise KeyboardInterrupt("killed before the rows were committed")

    monkeypatch.setattr(outbox_module, "write_states", killed)
    inbox = fill_inbox(tmp_path / "inbox", sorted((small_year / "inbox").glob("*_2026-03_*")))
    home = prepare_test_home(Home(root=tmp_path / "home"))
    with pytest.raises(KeyboardInterrupt):
        intake_directory(home, inbox, workers=1)
    written = _edi_files(home)
    assert written and outbox_states(home) == []
    monkeypatch.undo()

    intake_directory(home, inbox, workers=1)
    states = outbox_states(home)
    assert {Path(s["file"]).name for s in states} == set(written) == set(_edi_files(home))
    assert {s["submission_id"] for s in states} == {r.submission_id for r in load_records(home)}
