"""Journey definitions: bad ones refused with one line naming the problem and nothing stored;
random definitions (structures and text) never raise anything but one JourneyError line; the
conditions' evaluator agrees with the rule compiler on random rows."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from journey_support import CART, KNOWN, T0
from sendwise.errors import JourneyError
from sendwise.journeys.conditions import evaluate
from sendwise.journeys.definition import load_journey, loads_journey, parse_journey, validate
from sendwise.journeys.service import save_journey
from sendwise.segments.language import compile_rule
from sendwise.store import MemoryStore

BAD = [
    (
        CART.replace('event = "Product Added"', 'event = "Prodcut Added"'),
        "trigger.event: unknown event 'Prodcut Added'; did you mean 'Product Added'?",
    ),
    (
        CART.replace('event = "Order Completed"', 'event = "Order Done"'),
        "goal.event: unknown event 'Order Done'",
    ),
    (
        CART.replace('send = "abandoned-cart.html"', 'send = "abandoned-cat.html"', 1),
        "step 'reminder_1': unknown template 'abandoned-cat.html'; "
        "did you mean 'abandoned-cart.html'?",
    ),
    (
        CART + '[[steps]]\nid = "again"\nif = "cart_items > 0"\nthen = "reminder_2"\n',
        "steps 'reminder_2' -> 'again' -> 'reminder_2': a cycle without a wait",
    ),
    (
        CART + '[[steps]]\nid = "check"\nif = "p_purchse > 0.5"\n',
        "step 'check': unknown field 'p_purchse'; did you mean 'p_purchase'?",
    ),
    (
        CART + '[[steps]]\nid = "check"\nif = "p_purchase > 0.5"\nthen = "nowhere"\n',
        "step 'check'.then: unknown step id 'nowhere'",
    ),
    (CART.replace('wait = "1h"', 'wait = "soon"'), "step 'wait_1h'.wait: 'soon' is not a duration"),
    (
        CART.replace("[entry]", "[entry]\nholdout = 2"),
        "entry.holdout: 2 must be a number from 0 to 0.9",
    ),
    ("colour = 'red'\n" + CART, "journey: unknown setting 'colour'"),
    (CART + "colour = 'red'\n", "step 4: unknown setting 'colour'"),
    ("name = 'x'\n[trigger\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_a_bad_definition_is_one_line_and_stores_nothing(text: str, message: str) -> None:
    store = MemoryStore()
    with pytest.raises(JourneyError) as caught:
        save_journey(store, loads_journey(text), KNOWN, T0)
    shown = str(caught.value)
    assert message in shown and "\n" not in shown
    assert store.journeys.all() == [] and store.campaigns.get("journey-abandoned_cart") is None


def test_a_good_definition_is_stored_as_a_new_version(tmp_path: Path) -> None:
    store = MemoryStore()
    path = tmp_path / "cart.toml"
    path.write_text(CART)
    assert save_journey(store, load_journey(path), KNOWN, T0) == 1
    yaml_path = tmp_path / "cart.yaml"
    import yaml

    yaml_path.write_text(yaml.safe_dump(loads_journey(CART).raw))
    assert save_journey(store, load_journey(yaml_path), KNOWN, T0) == 2
    assert store.campaigns.get("journey-abandoned_cart").definition["kind"] == "journey"
    with pytest.raises(JourneyError, match="cannot read"):
        load_journey(tmp_path / "missing.toml")


# --- random definitions -----------------------------------------------------------------------

WORDS = ["name", "trigger", "steps", "event", "goal", "entry", "id", "wait", "send", "if",
         "then", "else", "split", "update", "webhook", "exit", "wait_for", "timeout",
         "wait_until", "next", "where", "segment", "score", "above", "holdout", "reentry",
         "within", "Product Added", "Order Completed", "abandoned-cart.html", "1h",
         "p_purchase > 0.5",
         "09:00", "best_hour", "a", "b", "x"]  # fmt: skip
scalars = st.one_of(st.sampled_from(WORDS), st.text(max_size=20), st.integers(-5, 5),
                    st.floats(allow_nan=True), st.booleans(), st.none())  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(WORDS), st.text(max_size=8)), inner, max_size=5),
    ),
    max_leaves=25,
)
step = st.fixed_dictionaries(
    {"id": st.one_of(st.sampled_from(["a", "b", "c", "x"]), st.text(max_size=5))},
    optional={k: values for k in ("wait", "send", "if", "then", "else", "split", "update",
                                  "webhook", "exit", "wait_for", "timeout", "next", "wait_until")},
)  # fmt: skip
definitions = st.fixed_dictionaries(
    {"name": st.one_of(st.just("j"), st.text(max_size=6))},
    optional={
        "trigger": st.one_of(values, st.fixed_dictionaries({}, optional={
            k: values for k in ("event", "where", "segment", "score", "above", "on", "date")})),
        "goal": values,
        "entry": values,
        "steps": st.one_of(values, st.lists(step, min_size=1, max_size=6)),
        "frequency_cap": values,
    },
)  # fmt: skip


def _one_line_or_valid(build: Any) -> None:
    try:
        defn = build()
        validate(defn, KNOWN)
    except JourneyError as exc:
        assert str(exc) and "\n" not in str(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definitions)
def test_random_definitions_are_valid_or_one_journey_error(data: dict) -> None:
    _one_line_or_valid(lambda: parse_journey(data))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.booleans())
def test_random_text_is_valid_or_one_journey_error(text: str, yaml: bool) -> None:
    _one_line_or_valid(lambda: loads_journey(text, yaml=yaml))


# --- the evaluator against the compiler ----------------------------------------------------------

FIELDS = {"x": "float64", "y": "float64", "s": "string", "b": "boolean"}
atoms = st.sampled_from([
    "x > 0.5", "x <= y", "y == 3", "x != 1", "s == 'a'", "s in ['a', 'b']", "s not in ['a']",
    "x is null", "s is not null", "b", "b == true", "x + y > 1", "x / y > 1", "x * 2 < y - 1",
    "0 < x < 1", "-x > -0.5", "not b",
])  # fmt: skip
rules = st.recursive(atoms, lambda r: st.one_of(
    st.tuples(r, st.sampled_from([" and ", " or "]), r).map(lambda t: f"({t[0]}{t[1]}{t[2]})"),
    r.map(lambda a: f"not ({a})")), max_leaves=6)  # fmt: skip
rows = st.fixed_dictionaries({
    "x": st.one_of(st.none(), st.floats(-3, 3, allow_nan=False)),
    "y": st.one_of(st.none(), st.sampled_from([0.0, 1.0, 3.0, -2.0])),
    "s": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    "b": st.one_of(st.none(), st.booleans()),
})  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(rules, rows)
def test_the_evaluator_agrees_with_the_rule_compiler(rule: str, row: dict) -> None:
    table = pa.table({k: pa.array([row[k]], type=getattr(pa, {"float64": "float64", "string":
                      "string", "boolean": "bool_"}[t])()) for k, t in FIELDS.items()})  # fmt: skip
    t = ibis.memtable(table)
    expected = bool(t.select(hit=compile_rule(t, rule)).to_pyarrow()["hit"][0].as_py())
    got = evaluate(rule, row)
    if any(isinstance(v, float) and math.isinf(v) for v in row.values()):
        return
    assert got == expected, (rule, row)
