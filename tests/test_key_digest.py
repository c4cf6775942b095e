"""The key digest that lets intake compare an ord with its ide without reading either back.

Equal digests must mean equal key sets (else a mismatch would go unanswered), a chunk's held
rows and a file's own parts must digest alike (else every small pair would fall back to the
read), and the ``ide_mismatch`` warning must say what it said before the digests.
"""

from __future__ import annotations

from datetime import date
from hashlib import blake2b
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npr_pipeline.home import Home
from npr_pipeline.intake import run
from npr_pipeline.intake.gate import RegistryIndex
from npr_pipeline.intake.key_digest import PAIRED_KEYS, key_digest
from npr_pipeline.intake.reader import read_submission
from npr_pipeline.intake.reasons import Status
from npr_pipeline.registry import read_registry_csv
from tests.intake_files import Unit, decode, encode, fill_inbox, make_year, run_intake
from tests.soak import examples

# few characters and short keys: equal sets, prefixes ("a", "ab") and non-ASCII come up often
_KEY = st.text(alphabet="ab\u00e50 ", max_size=3)


@pytest.mark.soak
@settings(max_examples=examples(300), deadline=None)
@given(st.data())
def test_digests_are_equal_exactly_when_the_key_sets_are(data: st.DataObject) -> None:
    pool = data.draw(st.lists(_KEY, min_size=1, max_size=6))
    a = data.draw(st.lists(st.sampled_from(pool), max_size=8))
    b = data.draw(st.lists(st.sampled_from(pool), max_size=8))
    same = key_digest(pa.array(a, pa.string())) == key_digest(pa.array(b, pa.string()))
    assert same == (set(a) == set(b)), (a, b)


@pytest.mark.soak
@settings(max_examples=examples(300), deadline=None)
@given(
    st.lists(
        st.lists(
            st.text(
                alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\0"),
                max_size=4,
            )
        )
    )
)
def test_the_digest_keeps_its_format(chunks: list[list[str]]) -> None:
    """The fixed format, spelled out: BLAKE2b-128 of the distinct keys' UTF-8 in byte order,
    each ended by NUL, whatever the keys' order, repeats, scripts (astral ones too) or
    chunks. Digests already recorded must stay comparable with new ones."""
    keys = [key for chunk in chunks for key in chunk]
    ended = b"".join(key + b"\0" for key in sorted({key.encode() for key in keys}))
    expected = blake2b(ended, digest_size=16).digest()
    assert key_digest(pa.array(keys, pa.string())) == expected
    assert key_digest(pa.chunked_array(chunks, pa.string())) == expected


def test_a_missing_key_has_no_digest() -> None:
    """A null key is left to the set comparison: {None, "a"} and {"a"} must not digest alike."""
    assert key_digest(pa.array(["a", None])) is None


@pytest.fixture(scope="module")
def year(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Unit], Path]:
    out = tmp_path_factory.mktemp("synth-keydigest")
    return make_year(out, units=2, through=2, episodes=8.0), out / "registry.csv"


def test_held_and_staged_reads_give_the_same_digest(year, tmp_path: Path) -> None:
    """Every ord and ide: the digest of a chunk's held rows equals that of the file's own
    staged parts and that of the key column read back from them; an ord's equals its ide's
    (the synthetic pairs match)."""
    units, registry = year
    index = RegistryIndex(read_registry_csv(registry))
    by_file: dict[Path, bytes] = {}
    for unit in units.values():
        for path in unit.files.values():
            staged = read_submission(path, index, tmp_path / path.stem, "s", date(2026, 3, 5),
                                     1 << 30)  # fmt: skip
            held: dict[str, pa.Table] = {}
            chunked = read_submission(path, index, tmp_path / "held", "s", date(2026, 3, 5),
                                      1 << 30, held)  # fmt: skip
            assert not staged.errors and held and not chunked.staged
            table, column = PAIRED_KEYS[staged.header.msg_type]  # type: ignore[union-attr]
            written = pq.read_table(staged.staged[table], columns=[column]).column(0)
            assert staged.record_keys is not None
            assert staged.record_keys == chunked.record_keys == key_digest(written)
            by_file[path] = staged.record_keys
    for unit in units.values():
        for month in (1, 2):
            assert by_file[unit.file("ord", month)] == by_file[unit.file("ide", month)]
    assert len(set(by_file.values())) > 1


def _without_one_ident(ide: Path) -> tuple[bytes, str]:
    """The ide without its first PasientIdent, and that patient's pid."""
    text = decode(ide.read_bytes())
    start = text.index("<PasientIdent ")
    end = text.index("\n", start) + 1
    pid = text[start:end].split('pid="', 1)[1].split('"', 1)[0]
    return encode(text[:start] + text[end:]), pid


@pytest.mark.parametrize("route", ["chunked", "alone", "two_runs"])
def test_ide_mismatch_warns_as_before(
    year, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:
    """One unit's pair matches, the other's ide lacks a patient: the first pair gets no
    warning, the second the same ``ide_mismatch`` text as before digests, whether the files
    shared a chunk's parts, had parts of their own, or the ord came in an earlier run (no
    digest of it kept: the sets are compared)."""
    units, registry = year
    clean, short = sorted(units.values(), key=lambda u: u.resh)
    ide, pid = _without_one_ident(short.file("ide", 2))
    ords = [clean.file("ord", 2), short.file("ord", 2)]
    home = Home(root=tmp_path / "home")
    if route == "alone":
        monkeypatch.setattr(run, "SMALL_FILE", 0)  # every file alone, with parts of its own
    if route == "two_runs":
        run_intake(home, fill_inbox(tmp_path / "first", ords))
        ords = []
    inbox = fill_inbox(tmp_path / "inbox", [*ords, clean.file("ide", 2)],
                       **{short.file("ide", 2).name: ide})  # fmt: skip
    summary = run_intake(home, inbox)
    assert {s.status for s in summary.submissions} == {Status.ACCEPTED}
    warned = {s.unit: [(r.code, r.severity, r.message) for r in s.reasons]
              for s in summary.submissions if s.reasons}  # fmt: skip
    expected = ("The identity message does not cover exactly the patients of its ord. "
                f"1 patient(s) in ord without ident (e.g. {pid}); "
                "0 ident(s) without a patient in ord.")  # fmt: skip
    assert warned == {short.resh: [("ide_mismatch", "warning", expected)]}
