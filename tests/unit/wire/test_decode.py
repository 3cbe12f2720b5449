"""Bounded JSON decoding: the depth measured on the bytes agrees with the value's own."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.wire.decode import MAX_DEPTH, JSONError, decode, decode_object, depth


def true_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((true_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((true_depth(item) for item in value.values()), default=0)
    return 0


tricky_text = st.text(alphabet='[]{}"\\ab', max_size=12)


values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=40,
)


def nest(value: Any, levels: int) -> Any:
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


@settings(max_examples=400)
@given(values, st.integers(0, 80))
def test_the_depth_of_the_bytes_is_the_depth_of_the_value(value: Any, levels: int) -> None:
    nested = nest(value, levels)
    data = msgspec.json.encode(nested)
    measured = depth(data)
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH:
        assert measured == true_depth(nested)
    else:
        assert measured <= true_depth(nested) <= MAX_DEPTH


def test_brackets_and_escapes_inside_strings_do_not_count() -> None:
    text = msgspec.json.encode(["]" * 100, "\\", '"[[[', {"a": "{" * 100}])
    assert depth(text) == 2
    assert decode(text)[0] == "]" * 100


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 500, 976, 5000])
def test_deeper_than_the_bound_is_refused(levels: int) -> None:
    with pytest.raises(JSONError, match="nested more than"):
        decode("[" * levels + "]" * levels)


def test_at_the_bound_is_accepted() -> None:
    assert true_depth(decode("[" * MAX_DEPTH + "]" * MAX_DEPTH)) == MAX_DEPTH


@pytest.mark.parametrize("text", ["", "{", "nan", '{"a":1}x', "\xff"])
def test_not_json_says_why(text: str) -> None:
    with pytest.raises(JSONError):
        decode(text)


@pytest.mark.parametrize("text", ["[]", "1", '"x"', "null"])
def test_an_object_is_required_where_one_is_expected(text: str) -> None:
    with pytest.raises(JSONError, match="expected a JSON object"):
        decode_object(text)
    assert decode_object('{"a": [1]}') == {"a": [1]}
