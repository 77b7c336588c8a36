"""Shared pieces of the journey tests: a frozen clock, intake rows, a serving stand-in whose
live profiles are plain dicts (unit tests; the end-to-end tests use the real Serving)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sendwise.errors import NotFoundError
from sendwise.journeys.definition import KnownNames, loads_journey
from sendwise.journeys.engine import JourneyEngine
from sendwise.journeys.service import save_journey
from sendwise.serving.live import LiveFields
from sendwise.serving.service import LiveProfile

T0 = datetime(2026, 3, 2, 12)
TEMPLATES = frozenset(
    {"abandoned-cart.html", "welcome.html", "post-purchase.html", "win-back.html"}
)
KNOWN = KnownNames(templates=TEMPLATES)

CART = """
name = "abandoned_cart"
[trigger]
event = "Product Added"
[goal]
event = "Order Completed"
within = "7d"
[entry]
reentry = "after 30d"
[[steps]]
id = "wait_1h"
wait = "1h"
[[steps]]
id = "reminder_1"
send = "abandoned-cart.html"
[[steps]]
id = "wait_24h"
wait = "24h"
[[steps]]
id = "reminder_2"
send = "abandoned-cart.html"
"""

WELCOME = """
name = "welcome"
[trigger]
event = "Signed Up"
[[steps]]
id = "check"
if = "p_purchase > 0.75"
then = "offer"
else = "plain"
[[steps]]
id = "offer"
send = "welcome.html"
next = "done"
[[steps]]
id = "plain"
send = "welcome.html"
[[steps]]
id = "done"
exit = true
"""


class Clock:
    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **kw: float) -> None:
        self.at += timedelta(**kw)


class FakeServing:
    """Live profiles from dicts: customer -> {"email":..., "p_purchase":...}."""

    def __init__(self, people: dict[str, dict[str, Any]] | None = None) -> None:
        self.people = people or {}

    def live_profile(self, customer_id: str) -> LiveProfile:
        if customer_id not in self.people:
            raise NotFoundError("customer", customer_id)
        p = dict(self.people[customer_id])
        scores = {k: p.pop(k) for k in list(p) if k.startswith("p_") or k == "churn_risk"}
        row = {"customer_id": customer_id, "profile": p, "scores": scores, "segments": []}
        return LiveProfile(customer_id, 1, True, row, LiveFields(), [])

    def live_profiles(self, customer_ids: Any) -> dict[str, LiveProfile]:
        """Serving.live_profiles: each one found, one by one (a subclass's failure fails all)."""
        out = {}
        for cid in customer_ids:
            with contextlib.suppress(NotFoundError):
                out[cid] = self.live_profile(cid)
        return out


def track(customer_id: str, event: str, at: datetime = T0, **properties: Any) -> dict[str, Any]:
    return dict(message_id=f"t-{uuid.uuid4()}", type="track", event=event, user_id=customer_id,
                anonymous_id=None, customer_id=customer_id, occurred_at=at, received_at=at,
                sent_at=None, properties=properties, traits={}, context={},
                source="tests")  # fmt: skip


def engine_with(store: Any, toml: str, clock: Clock, people: dict | None = None,
                **kw: Any) -> JourneyEngine:  # fmt: skip
    save_journey(store, loads_journey(toml), KNOWN, clock())
    return JourneyEngine(store, None, FakeServing(people), clock, **kw)


def run(engine: JourneyEngine, events: list[dict[str, Any]] = ()) -> int:  # type: ignore[assignment]
    if events:
        engine.store.intake.append(list(events))
    engine.poll_events()
    total = 0
    while n := engine.run_due():
        total += n
    return total
