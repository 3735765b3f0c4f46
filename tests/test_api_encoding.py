"""The service's two hot JSON encoders (pydantic-core's) against the standard library's.

A decision's answer and a log line must parse to what ``json`` wrote before; where
pydantic-core's encoder would write something else (a non-finite number, a lone
surrogate) the standard library's encoder still decides.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tutela import Guard
from tutela.api import logs
from tutela.api.routes_prompts import _DecisionResponse

_reference = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def test_a_decision_renders_as_json_wrote_it(guard: Guard) -> None:
    for text in ("a watercolour of a lighthouse at dawn", "naked child", "a child at a party"):
        content = guard.check_prompt(text, account="acct-é").to_dict()
        assert _DecisionResponse(content).body == _reference(content).encode()


@given(_json_values)
def test_any_json_value_renders_to_the_same_data(value: Any) -> None:
    body = _DecisionResponse(value).body
    assert json.loads(body) == json.loads(_reference(value))


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_a_non_finite_number_is_refused_as_json_refuses_it(number: float) -> None:
    with pytest.raises(ValueError, match="not JSON compliant"):
        _DecisionResponse({"categories": {"sexual_minors": number}})


def test_the_words_nan_and_infinity_in_text_are_kept() -> None:
    content = {"reasons": ["NaN", "Infinity and beyond"], "score": 0.5}
    assert json.loads(_DecisionResponse(content).body) == content


@given(st.dictionaries(st.text(), _json_values, max_size=6))
def test_a_log_line_is_ascii_json_of_the_event(event: dict[str, Any]) -> None:
    line = logs._render(None, "info", dict(event))
    assert line.isascii() and "\n" not in line
    assert json.loads(line) == json.loads(logs._encode(event))


def test_a_log_line_json_cannot_encode_falls_back_to_json() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    event = {"event": "x", "text": "lone \ud800 surrogate", "thing": Opaque(), "n": math.nan}
    line = logs._render(None, "info", dict(event))
    assert line == logs._encode(event)
    assert json.loads(logs._render(None, "info", {"thing": Opaque()})) == {"thing": "<opaque>"}
