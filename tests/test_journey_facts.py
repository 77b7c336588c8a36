"""A journey batch's facts are read together (one read of the intake log for the addresses of
every customer the live profile gives none), on the in-memory fake and on SQLite; what each
customer gets is what reading them one by one gave."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import sql_store
from journey_support import CART, Clock, FakeServing, engine_with, run, track
from sendwise.store import MemoryStore

HELLO = """
name = "hello"
[trigger]
event = "Signed Up"
[[steps]]
id = "hello"
send = "welcome.html"
"""


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store("sqlite", tmp_path) as st:
        yield st


def identify(customer_id: str, at: Any, **traits: Any) -> dict[str, Any]:
    return dict(track(customer_id, "", at), type="identify", event=None, traits=traits)


def counting(store: Any) -> dict[str, int]:
    """Count the intake reads the journeys make (wrapping the store's own methods)."""
    calls = {"for_customers": 0, "for_customer": 0}
    for name in calls:
        real = getattr(store.intake, name)

        def counted(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
            calls[_name] += 1
            return _real(*a, **k)

        setattr(store.intake, name, counted)
    return calls


def sent(store: Any, journey: str) -> dict[str, str | None]:
    frame = store.messages.plan_frame(f"journey-{journey}")
    return {c: e if isinstance(e, str) else None
            for c, e in zip(frame["customer_id"], frame["email"], strict=True)}  # fmt: skip


def test_the_addresses_of_a_batch_come_from_one_read(store: Any) -> None:
    clock = Clock()
    eng = engine_with(store, HELLO, clock, {"P": {"email": "p@profile.org"}})
    people = [f"c{i}" for i in range(30)]
    store.intake.append([identify(c, clock(), email=f"{c}@x.org") for c in people])
    calls = counting(store)
    run(eng, [track(c, "Signed Up", clock()) for c in [*people, "P", "nobody"]])
    assert sent(store, "hello") == {
        **{c: f"{c}@x.org" for c in people},
        "P": "p@profile.org",  # the live profile's address comes first
        "nobody": None,  # no address anywhere: the send pipeline records it failed
    }
    assert calls == {"for_customers": 1, "for_customer": 0}


def test_an_active_customer_keeps_the_address_of_their_last_identify(store: Any) -> None:
    """Hundreds of events after the identify (more than the 200 the facts read of a customer
    before), and a later identify with a new address: the newest address is used."""
    clock = Clock()
    eng = engine_with(store, HELLO, clock)
    store.intake.append(
        [identify("A", clock(), email="old@x.org", timezone="Europe/Paris"),
         identify("A", clock(), email="new@x.org")]
        + [track("A", "Product Viewed", clock()) for _ in range(250)]
    )  # fmt: skip
    run(eng, [track("A", "Signed Up", clock())])
    assert sent(store, "hello") == {"A": "new@x.org"}
    frame = store.messages.plan_frame("journey-hello")
    assert list(frame["timezone"]) == ["Europe/Paris"]  # traits merged, the newest wins


def test_a_batch_of_waits_reads_no_facts(store: Any) -> None:
    clock = Clock()
    eng = engine_with(store, CART, clock)
    calls = counting(store)
    run(eng, [track(f"c{i}", "Product Added", clock()) for i in range(20)])
    assert len(store.journeys.states("abandoned_cart")) == 20
    assert calls == {"for_customers": 0, "for_customer": 0}


class Failing(FakeServing):
    """A live profile whose read fails for one customer."""

    def live_profile(self, customer_id: str) -> Any:
        if customer_id == "X":
            raise RuntimeError("a broken row")
        return super().live_profile(customer_id)


def test_one_customers_failing_read_fails_no_one_else(store: Any) -> None:
    clock = Clock()
    eng = engine_with(store, HELLO, clock)
    eng.facts.serving = Failing({c: {"email": f"{c}@x.org"} for c in "ABXCD"})
    eng.profiles.serving = eng.facts.serving  # the live profiles are read through it
    run(eng, [track(c, "Signed Up", clock()) for c in "ABXCD"])
    assert sent(store, "hello") == {c: f"{c}@x.org" for c in "ABCD"}
    reasons = {s.customer_id: s.exit_reason for s in store.journeys.states("hello")}
    assert reasons == {"A": "completed", "B": "completed", "X": "error", "C": "completed",
                       "D": "completed"}  # fmt: skip


def test_ids_are_keys_whatever_they_hold(store: Any) -> None:
    """Customer ids with quotes, commas, percent signs and non-ASCII letters are bound, never
    spliced into the SQL."""
    clock = Clock()
    eng = engine_with(store, HELLO, clock)
    odd = ["o'brien", 'say "hi"', "a,b", "100%", "zoë", f"u-{uuid.uuid4()}"]
    store.intake.append([identify(c, clock(), email=f"{i}@x.org") for i, c in enumerate(odd)])
    run(eng, [track(c, "Signed Up", clock()) for c in odd])
    assert sent(store, "hello") == {c: f"{i}@x.org" for i, c in enumerate(odd)}
