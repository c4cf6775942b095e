"""A new type version is data: a folder added to a copy of the messages root, and nothing else.

The copy (``NPR_MESSAGES_DIR``, the documented extension point of :mod:`npr_pipeline.messages`)
gets ``ord/59_0_1/``: 58.0.1's schema under the new namespace and ``versjon``, and a mapping
whose ``data_years`` make it the version of 2027. A hand-built ord file of 2027 in that version
goes through the real gate, schema validation and extraction of the monthly reader; without the
folder the same file is turned away, and a 58.0.1 file for 2027 is told which version it needs.
"""

from __future__ import annotations

import ast
import re
import shutil
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from npr_pipeline import messages, reference
from npr_pipeline.envelope import PRODUCTION_HER
from npr_pipeline.intake.gate import Header, RegistryIndex, check_header
from npr_pipeline.intake.reader import ReadResult, read_submission
from npr_pipeline.registry import read_registry_csv
from tests import handbuilt as hb

PACKAGE = Path(messages.__file__).resolve().parent
RECEIVED = date(2027, 4, 10)


def _new_version_root(tmp_path: Path) -> Path:
    """A copy of the messages root (and the common schemas its XSDs import) plus ord 59.0.1."""
    root = tmp_path / "npr" / "messages"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    shutil.copytree(PACKAGE.parent / "schemas", tmp_path / "npr" / "schemas")
    old, new = root / "ord" / "58_0_1", root / "ord" / "59_0_1"
    new.mkdir()
    xsd = (old / "schema.xsd").read_text(encoding="utf-8")
    xsd = xsd.replace("58_0_1_ord", "59_0_1_ord").replace('fixed="58.0.1"', 'fixed="59.0.1"')
    (new / "schema.xsd").write_text(xsd, encoding="utf-8")
    mapping = (old / "mapping.yaml").read_text(encoding="utf-8")
    mapping = mapping.replace("version: 58.0.1", "version: 59.0.1")
    mapping = re.sub(r"data_years: \[2026, 2026\]", "data_years: [2027, 2027]", mapping)
    (new / "mapping.yaml").write_text(mapping, encoding="utf-8")
    return root


def _ord_2027(tmp_path: Path, version: str) -> Path:
    """A hand-built, schema-valid 2026 ord file moved to data year 2027 in ``version``."""
    patient = hb.Patient("P1", hb.fnr(date(1970, 5, 1)), episodes=(
        hb.Episode("E1", hb.at("2026-03-03", "09:00"), hb.at("2026-03-03", "09:30")),
    ))  # fmt: skip
    text = hb.Submission(hb.HAUKELAND, 3, 1, [patient]).file("ord").decode("utf-8")
    text = text.replace("2026-", "2027-").replace('versjon="58.0.1"', f'versjon="{version}"')
    text = text.replace("58_0_1_ord", f"{version.replace('.', '_')}_ord")
    path = tmp_path / f"ord_{version}.xml"
    path.write_text(text, encoding="utf-8")
    return path


def _read(path: Path, tmp_path: Path) -> ReadResult:
    index = RegistryIndex(read_registry_csv(reference.reference_dir() / "units.csv"))
    staging = tmp_path / "staging" / path.stem
    return read_submission(path, index, staging, path.stem, RECEIVED, 1 << 30)


@pytest.fixture
def new_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = _new_version_root(tmp_path)
    monkeypatch.setenv(messages.ROOT_ENV, str(root))
    return root


def test_a_new_version_folder_is_accepted_without_code_changes(
    new_root: Path, tmp_path: Path
) -> None:
    assert messages.version_for("NPR_ORD", 2027) == "59.0.1"
    assert messages.version_for("NPR_ORD", 2026) == "58.0.1"
    assert messages.versions("ord") == ("57.0.1", "58.0.1", "59.0.1")
    read = _read(_ord_2027(tmp_path, "59.0.1"), tmp_path)
    assert read.errors == [] and not read.gate.rejected  # hand-built: a contact without e-mail
    assert (read.version, read.msg, read.year, read.patients, read.episodes) == (
        "59.0.1", "ord", 2027, 1, 1,
    )  # fmt: skip
    episodes = pq.read_table(read.staged["episodes"]).to_pylist()
    assert [(row["episodeID"], row["year"]) for row in episodes] == [("E1", 2027)]


def test_the_folder_decides_the_version_of_a_data_year(new_root: Path, tmp_path: Path) -> None:
    read = _read(_ord_2027(tmp_path, "58.0.1"), tmp_path)
    assert [r.code for r in read.gate.reasons] == ["wrong_version"]
    assert read.gate.reasons[0].message.endswith("Data year 2027 needs 59.0.1, got 58.0.1.")
    assert read.staged == {}


def test_without_the_folder_the_same_file_is_turned_away(tmp_path: Path) -> None:
    read = _read(_ord_2027(tmp_path, "59.0.1"), tmp_path)
    assert [r.code for r in read.gate.reasons] == ["unknown_payload"]
    assert messages.version_for("NPR_ORD", 2027) is None


def test_a_new_type_folder_is_a_known_type(new_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder of a type the gate has never seen makes its ``MsgInfo/Type`` known: the unit is
    then told it does not report the type (the registry's list), not that the type is unknown."""
    shutil.copytree(new_root / "kpp", new_root / "nytype")
    mapping = new_root / "nytype" / "58_0_1" / "mapping.yaml"
    text = mapping.read_text(encoding="utf-8")
    mapping.write_text(re.sub(r"(?m)^message_type: .*$", "message_type: NPR_NY", text))
    index = RegistryIndex(read_registry_csv(reference.reference_dir() / "units.csv"))
    unit = hb.HAUKELAND
    header = Header(
        "NPR_NY",
        sender={"HER": [unit.her], "ENH": [unit.orgnr], "RSH": [unit.resh]},
        receiver={"HER": [PRODUCTION_HER]},
    )
    assert [r.code for r in check_header(header, index).reasons] == ["type_not_reported"]
    monkeypatch.delenv(messages.ROOT_ENV)
    assert [r.code for r in check_header(header, index).reasons] == ["unknown_message_type"]


def _listed(node: ast.AST, versions: set[str], pairs: set[tuple[str, str]]) -> bool:
    """Whether a literal below ``node`` lists two versions the folders hold, or maps a type's
    ``MsgInfo/Type`` to its kind (as ``schemas.MSG_TYPES`` once did)."""
    for literal in ast.walk(node):
        if isinstance(literal, ast.Tuple | ast.List | ast.Set):
            found = {e.value for e in literal.elts if isinstance(e, ast.Constant)}
            if len(found & versions) >= 2:
                return True
        if isinstance(literal, ast.Dict):
            items = zip(literal.keys, literal.values, strict=True)
            if any(
                isinstance(k, ast.Constant) and isinstance(v, ast.Constant)
                and (k.value, v.value) in pairs
                for k, v in items
            ):  # fmt: skip
                return True
    return False


def test_nothing_else_lists_types_or_versions() -> None:
    """The folders are the one source: no module, test or benchmark assigns or loops over its
    own list of versions (``57.0.1`` and ``58.0.1``, or ``57_0_1`` ...) or its own map of
    ``MsgInfo/Type`` to kind, so a new version folder needs no code change anywhere."""
    held = messages.all_types()
    versions = {t.version for t in held} | {t.version.replace(".", "_") for t in held}
    pairs = {(t.message_type, t.kind) for t in held}
    checked, found = 0, []
    for folder in ("npr_pipeline", "assets", "benchmarks", "tests"):
        for path in sorted((PACKAGE.parents[1] / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            checked += 1
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign | ast.AnnAssign | ast.For | ast.comprehension):
                    source = (
                        node.iter if isinstance(node, ast.For | ast.comprehension) else node.value
                    )
                    if source is not None and _listed(source, versions, pairs):
                        found.append(f"{path.relative_to(PACKAGE.parents[1])}:{source.lineno}")
    assert checked > 100 and found == []


def test_the_check_finds_a_list_of_versions() -> None:
    """The check above can fail: the old ``schemas`` constants are found."""
    tree = ast.parse('VERSIONS = ("57.0.1", "58.0.1")\nMSG_TYPES = {"NPR_ORD": "ord"}\n')
    held = messages.all_types()
    versions, pairs = {t.version for t in held}, {(t.message_type, t.kind) for t in held}
    assert [_listed(node.value, versions, pairs) for node in tree.body] == [True, True]
