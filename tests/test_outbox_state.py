"""An outbox state record is written as ``json.dumps(state, ensure_ascii=False, indent=1)``
writes it, whether it goes the fast way (a flat record) or not (issue 13, "Speed")."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from npr_pipeline.feedback.outbox import state_text

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
_VALUES = _SCALARS | st.lists(_SCALARS, max_size=3) | st.dictionaries(st.text(), _SCALARS)
_KEYS = st.text() | st.integers() | st.booleans()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(_KEYS, _VALUES, max_size=8))
def test_a_state_record_is_the_text_json_indent_1_writes(state: dict) -> None:
    assert state_text(state) == json.dumps(state, ensure_ascii=False, indent=1)


def test_a_message_state_in_norwegian_and_with_quotes_is_unchanged() -> None:
    state = {"id": "6b0f", "channel": "edi", "her": None, "kind": "XPR_VAL",
             "why": 'Avsender «Sjø» har ingen "HER"\n\u2028', "size": 12}  # fmt: skip
    assert state_text(state) == json.dumps(state, ensure_ascii=False, indent=1)
