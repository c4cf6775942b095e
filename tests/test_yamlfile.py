"""The project's YAML loader reads every YAML file of the repository as yaml.safe_load does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from npr_pipeline import yamlfile

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(
    p
    for folder in ("npr_pipeline", "expectations", "data")
    for p in (ROOT / folder).rglob("*.yaml")
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_same_document_as_the_python_safe_loader(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    expected = yaml.safe_load(text)
    found = yamlfile.safe_load(text)
    assert found == expected
    assert repr(found) == repr(expected)  # types too: dates, ints, strings alike


def test_refuses_what_the_safe_loader_refuses() -> None:
    with pytest.raises(yaml.YAMLError):
        yamlfile.safe_load("!!python/object/apply:os.system ['true']")


def test_libyaml_is_used_where_pyyaml_has_it() -> None:
    assert yaml.__with_libyaml__, "PyYAML without libyaml: the C loader this module uses"
    assert yamlfile._LOADER is yaml.CSafeLoader
