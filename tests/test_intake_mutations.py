"""Randomly mutated real files through intake, each answer held against an independent judge.

What an outside review's campaign of mutated files does, run first: clean files of the small
synthetic year get one to three random mutations each (a byte changed, inserted, deleted or
repeated, the file cut short, a DOCTYPE with an external entity, another encoding declared, a
byte-order mark, a NUL, an attribute's value replaced by a lexical oddity, digits changed),
and one intake takes the whole batch. Every file is then judged again by lxml: a DOM parse
(no entities, no network, no DTD) and ``XMLSchema.validate`` of its Melding against its type's
XSD, which is libxml2's tree validator in lxml's own libxml2, a code path apart from intake's
streaming SAX pass over the system's libxml2 (``npr_pipeline/intake/native``).

The judge sees only the payload, intake also the envelope and the gate, so the rules run one
way: a file accepted is one the judge finds well-formed, without a DOCTYPE, its Melding valid;
a file the judge finds otherwise is never accepted; a file intake rejects for its payload's
schema is one whose Melding the judge finds invalid; and no file is left without a final
answer (``failed`` is an internal error). Session 22 ran 15 such batches of 60 national April
files (900 files, value mutations only) and 12 of every kind: no disagreement.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from npr_pipeline.home import Home
from npr_pipeline.intake.run import intake_directory
from npr_pipeline.messages import by_namespace
from tests.intake_files import prepare_test_home
from tests.soak import SOAK

BATCHES = 10 if SOAK else 2
FILES = 24  # of the small year's 48
ODDITIES = (
    b"", b" 1 ", b"-0", b"+5", b"1e3", b"9" * 23, b"2026-02-30", b"2026-13-01", b"24:00:00",
    b"2026-04-01T24:00:00", b"2026-04-01Z", b"\xc3\xa6\xc3\xb8", b"&#0;", b"&#13;&#10;",
    b"&amp;", b"1.5", b"NaN", b"0x10", b"\xff", b"--",
)  # fmt: skip
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _flip(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]


def _cut(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data))]


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + rng.randbytes(rng.randrange(1, 8)) + data[at:]


def _delete(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randrange(1, 50) :]


def _repeat(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    end = min(len(data), at + rng.randrange(1, 400))
    return data[:end] + data[at:end] + data[end:]


def _entity(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"?>", b'?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', 1)


def _encoding(rng: random.Random, data: bytes) -> bytes:
    other = rng.choice([b"UTF-16", b"latin1", b"EBCDIC", b"ISO-8859-1", b"UTF-8"])
    return data.replace(b'encoding="UTF-8"', b'encoding="' + other + b'"', 1)


def _bom(rng: random.Random, data: bytes) -> bytes:
    return b"\xef\xbb\xbf" + data


def _nul(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + b"\x00" + data[at:]


def _value(rng: random.Random, data: bytes) -> bytes:
    """The next attribute value after a random place, replaced by a lexical oddity."""
    start = data.find(b'="', rng.randrange(len(data)))
    if start < 0:
        return data
    end = data.find(b'"', start + 2)
    return data[: start + 2] + rng.choice(ODDITIES) + data[end:]


def _digits(rng: random.Random, data: bytes) -> bytes:
    changed = bytearray(data)
    for _ in range(5):
        at = rng.randrange(len(changed))
        if 0x30 <= changed[at] <= 0x39:
            changed[at] = rng.randrange(0x30, 0x3A)
    return bytes(changed)


MUTATIONS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    _flip, _cut, _insert, _delete, _repeat, _entity, _encoding, _bom, _nul,
    _value, _value, _value, _digits, _digits,
)  # fmt: skip
"""Value mutations weighted up: they reach the schema's facets and intake's lexical rules."""


def _mutated_inbox(clean: list[Path], inbox: Path, seed: int) -> None:
    rng = random.Random(seed)
    inbox.mkdir()
    for number, path in enumerate(rng.sample(clean, FILES)):
        data = path.read_bytes()
        for _ in range(rng.randrange(1, 4)):
            if data:  # a file cut to nothing stays empty (its own refusal)
                data = rng.choice(MUTATIONS)(rng, data)
        (inbox / f"m{number:02d}_{path.name}").write_bytes(data)


def _judge(path: Path, schemas: dict[Path, etree.XMLSchema]) -> str:
    """``valid``, ``invalid`` (the Melding against its type's XSD), ``malformed``,
    ``doctype`` or ``no payload`` (no Melding of a known type)."""
    try:
        tree = etree.parse(str(path), SAFE)
    except (etree.XMLSyntaxError, OSError):  # OSError: bytes not in the declared encoding
        return "malformed"
    if tree.docinfo.doctype:
        return "doctype"
    melding = next(tree.iter("{*}Melding"), None)
    mtype = by_namespace(etree.QName(melding).namespace) if melding is not None else None
    if mtype is None:
        return "no payload"
    if mtype.schema_path not in schemas:
        schemas[mtype.schema_path] = etree.XMLSchema(etree.parse(str(mtype.schema_path)))
    # the element itself, validated as the root (lxml): a copy through tostring() escaped a
    # mutated non-ASCII tag name as a character reference, which no parser reads back
    return "valid" if schemas[mtype.schema_path].validate(melding) else "invalid"


@pytest.mark.soak
@pytest.mark.parametrize("seed", range(BATCHES))
def test_every_mutated_file_gets_an_answer_the_independent_judge_agrees_with(
    small_year: Path, tmp_path: Path, seed: int
) -> None:
    clean = sorted((small_year / "inbox").glob("*.xml"))
    inbox = tmp_path / "inbox"
    _mutated_inbox(clean, inbox, seed)
    home = prepare_test_home(Home(root=tmp_path / "home"), small_year / "registry.csv")

    answers = intake_directory(home, inbox).as_json()["submissions"]

    schemas: dict[Path, etree.XMLSchema] = {}
    assert len(answers) == FILES
    for answer in answers:
        verdict = _judge(inbox / answer["file"], schemas)
        codes = {r["code"] for r in answer["reasons"] if r.get("severity", "error") == "error"}
        seen = (answer["file"], answer["status"], verdict, sorted(codes))
        assert answer["status"] != "failed", seen
        if answer["status"] == "accepted":
            assert verdict == "valid", seen
        if verdict in ("malformed", "doctype", "invalid"):
            assert answer["status"] == "rejected", seen
        if "schema_error" in codes:
            assert verdict == "invalid", seen
