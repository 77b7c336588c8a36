"""An adaptive (Thompson) split in a journey: shares learnt from the goal conversions of the
arms so far, an exploration floor, and each customer's arm written back before the steps that
follow it, so that a run repeated after a crash cannot send a second arm's message."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from journey_support import KNOWN, Clock, engine_with, run, track
from sendwise.errors import JourneyError
from sendwise.journeys.definition import loads_journey
from sendwise.journeys.engine import JourneyEngine
from sendwise.journeys.service import save_journey
from sendwise.store import MemoryStore

ADAPTIVE = """
name = "adaptive"
[trigger]
event = "Signed Up"
[goal]
event = "Order Completed"
within = "7d"
[[steps]]
id = "pick"
split = {a = 1, b = 1}
allocation = "thompson"
floor = 0.05
[[steps]]
id = "a"
send = "welcome.html"
next = "stop"
[[steps]]
id = "b"
send = "win-back.html"
[[steps]]
id = "stop"
exit = true
"""

TRUE_RATE = {"a": 0.04, "b": 0.30}


def _arm_of(store, cid: str) -> str:
    (state,) = store.journeys.states("adaptive", cid)
    return str(state.arm)


def test_traffic_moves_to_the_arm_that_converts_and_the_floor_keeps_exploring() -> None:
    store, clock = MemoryStore(), Clock()
    rng = np.random.default_rng(7)
    people = {f"c{i}": {"email": f"c{i}@example.com"} for i in range(3000)}
    eng = engine_with(store, ADAPTIVE, clock, people)
    shares: list[float] = []
    for wave in range(10):
        ids = [f"c{i}" for i in range(wave * 300, (wave + 1) * 300)]
        run(eng, [track(c, "Signed Up", clock()) for c in ids])
        arms = Counter(_arm_of(store, c) for c in ids)
        shares.append(arms["b"] / 300)
        clock.advance(hours=1)
        # the customers answer from their arm's true rate: a goal event each, after the send
        bought = [c for c in ids if rng.random() < TRUE_RATE[_arm_of(store, c)]]
        run(eng, [track(c, "Order Completed", clock(), total=20.0) for c in bought])
        clock.advance(hours=1)
    assert 0.35 < shares[0] < 0.65  # nothing learnt yet: about even
    assert min(shares[3:]) > 0.80, shares  # the better arm takes the traffic
    assert max(shares[3:]) < 0.99, shares  # the floor keeps a little for the other
    # each customer one message, of the arm stored in their state; conversions were counted
    frame = store.messages.plan_frame("journey-adaptive")
    assert frame["customer_id"].is_unique and len(frame) == 3000
    # a send after a split is labelled step.arm
    pairs = zip(frame["customer_id"], frame["variant"], strict=True)
    assert all(v == f"{_arm_of(store, c)}.{_arm_of(store, c)}" for c, v in pairs)
    seen = store.journeys.arm_outcomes("adaptive")
    assert seen["b"][1] / seen["b"][0] > 0.2 and seen["a"][1] / seen["a"][0] < 0.1


def test_a_run_repeated_after_a_crash_keeps_the_arm_it_chose() -> None:
    """The split's choice is written back before the send; a crash after the choice and a
    change of shares before the rerun cannot give the customer a second arm's message."""
    store, clock = MemoryStore(), Clock()
    people = {f"c{i}": {"email": f"c{i}@example.com"} for i in range(200)}
    eng = engine_with(store, ADAPTIVE, clock, people)
    store.intake.append([track(c, "Signed Up", clock()) for c in people])
    eng.poll_events()
    assert eng.run_due() == 200  # the choice only: nothing is sent in the same run
    assert len(store.messages.plan_frame("journey-adaptive")) == 0
    chosen = {c: _arm_of(store, c) for c in people}
    real = store.journeys.save_states
    store.journeys.save_states = lambda *a, **k: 0  # the crash: sends made, states not saved
    eng.run_due()
    store.journeys.save_states = real
    clock.advance(minutes=2)  # the lease is over; another worker with other shares reruns
    other = JourneyEngine(store, None, eng.serving, clock)
    other._weights = {("adaptive", "pick"): {"a": 0.01, "b": 0.99}}
    while other.run_due():
        pass
    frame = store.messages.plan_frame("journey-adaptive")
    assert frame["customer_id"].is_unique and len(frame) == 200
    assert dict(zip(frame["customer_id"], frame["variant"], strict=True)) == {
        c: f"{arm}.{arm}" for c, arm in chosen.items()
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.replace('[goal]\nevent = "Order Completed"\nwithin = "7d"\n', ""),
            "step 'pick': a thompson split learns from the [goal]: add one",
        ),
        (
            lambda t: t.replace('allocation = "thompson"', 'allocation = "greedy"'),
            "step 'pick': allocation 'greedy' must be fixed or thompson",
        ),
        (
            lambda t: t.replace("floor = 0.05", "floor = 0.7"),
            "step 'pick'.floor: 0.7 must be a number from 0 to 0.5",
        ),
        (
            lambda t: t + '[[steps]]\nid = "again"\nsplit = {x = 1, y = 1}\n',
            "step 'pick': a thompson split must be the journey's only split",
        ),
        (
            lambda t: t.replace('send = "win-back.html"', 'send = "win-back.html"\nfloor = 0.1'),
            "step 'b': 'floor' does not go with send",
        ),
    ],
)
def test_bad_adaptive_splits_are_one_line_and_store_nothing(change, message) -> None:
    store = MemoryStore()
    with pytest.raises(JourneyError) as caught:
        save_journey(store, loads_journey(change(ADAPTIVE)), KNOWN, Clock()())
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert store.journeys.all() == []
