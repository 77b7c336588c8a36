"""The size measure behind the template guards (ADR 58, 81): kept once per message only for the
message's own tokens, never stale, never for what a template builds."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.content import limits

LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30)
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(st.text(max_size=8), inner, max_size=6),
        st.tuples(inner, inner),
    ),
    max_leaves=40,
)


def _fresh(value, limit: int = limits.MAX_VALUE) -> int:
    limits.reset_budget()  # nothing kept
    return limits.size(value, limit)


@settings(max_examples=200, deadline=None)
@given(tokens=st.dictionaries(st.text(max_size=5), VALUES, max_size=5), small=st.integers(0, 60))
def test_a_kept_size_is_the_size(tokens: dict, small: int) -> None:
    expected = {k: _fresh(v) for k, v in tokens.items()}
    limits.reset_budget(tokens.values())
    for key, value in tokens.items():
        limits.size(value, small)  # a count stopped early is not kept
        assert limits.size(value) == expected[key]
        assert limits.size(value) == expected[key]  # from the memo
    assert set(limits._memo()) <= {id(v) for v in tokens.values()}


def test_sizes_are_kept_only_for_the_message_tokens() -> None:
    tokens = {"recommendations": [{"name": "Mug", "price": 9.5}], "customer": {"id": "C1"}}
    limits.reset_budget(tokens.values())
    built = [["x" * 1000] * 100 for _ in range(50)]  # what a template's loop could build
    for value in built:
        assert limits.size(value) == 100 * 1004 + 2 + 2 * 100
    for value in tokens.values():
        limits.size(value)
    memo = limits._memo()
    assert set(memo) == {id(v) for v in tokens.values()}  # the built lists are not held
    assert all(size >= 0 for _, size in memo.values())


def test_size_is_at_least_the_json_text() -> None:
    value = {"a": [1, 2.5, None, "é" * 10, {"b": (True, "x")}]}
    assert limits.size(value) >= len(json.dumps(value, ensure_ascii=False))
