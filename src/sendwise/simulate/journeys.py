"""Simulated time for journeys: the simulated shop's event stream replayed through the journey
engine on a simulated clock, the customers answering the journey's messages from their ground
truth, so that a journey's measured lift can be checked against its true effect.

    clock = SimClock(start)
    engine = JourneyEngine(store, settings, serving, clock)   # the real engine, any store
    replay = replay_journeys(store, engine, clock, shop, ["journey-abandoned_cart"])
    replay.truth(units, within)   # the true conversion lift of the treated entries

Each tick (15 simulated minutes by default) the replay appends the tick's events to the intake
log (the live profile reads them), hands them to ``engine.on_events``, advances the clock to
the tick's end and calls ``engine.run_due``; then every message the engine queued in the
journeys' campaigns since the last tick is "delivered" at that time (when the customer
consented, :mod:`sendwise.simulate.journey_response`), which may thin the customer's later
organic orders or add orders to the stream (as ``Order Completed`` events, so they reach the
journeys' goals and triggers like any order). Nothing here knows the engine's internals: it
needs ``on_events(rows)`` and ``run_due(now, limit)``.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import pandas as pd

from sendwise.simulate.journey_response import ResponseModel, true_effect
from sendwise.simulate.journey_stream import ORDER_COMPLETED, intake_row, journey_stream
from sendwise.simulate.shop import SimulatedShop

logger = logging.getLogger(__name__)

TICK = timedelta(minutes=15)
DUE_LIMIT = 10_000


class Engine(Protocol):
    def on_events(self, events: Sequence[dict[str, Any]]) -> Any: ...

    def run_due(self, now: datetime, limit: int) -> int: ...


class SimClock:
    """A settable clock: ``clock()`` is the simulated now (naive UTC, the store's convention)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Replay:
    model: ResponseModel
    organic: pd.DataFrame
    """customer_id, occurred_at of the shop's own orders (before any thinning)."""
    delivered: pd.DataFrame
    """message_key, campaign_id, customer_id, variant, at: the messages the customers got."""
    events: int = 0
    ticks: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def truth(self, units: pd.DataFrame, within: timedelta) -> float:
        """The true conversion lift of the treated entries (journey_response.true_effect)."""
        return true_effect(units, self.organic, self.model, within)


def _queued(store: Any, campaigns: Sequence[str], seen: set[str], sizes: dict[str, int]):
    """The messages queued since the last call (the replay never sends, so a journey's count
    of due messages grows exactly when it queues one: the plan is read only then)."""
    new = []
    for cid in campaigns:
        size = store.messages.count(cid)
        if size == sizes.get(cid, 0):
            continue
        sizes[cid] = size
        plan = store.messages.plan_frame(cid)
        for key, customer, variant in zip(
            plan["message_key"], plan["customer_id"], plan["variant"], strict=True
        ):
            if key not in seen:
                seen.add(key)
                new.append((key, cid, customer, variant))
    return new


def replay_journeys(
    store: Any,
    engine: Engine,
    clock: SimClock,
    shop: SimulatedShop,
    campaigns: Sequence[str],
    *,
    model: ResponseModel | None = None,
    tick: timedelta = TICK,
    until: datetime | None = None,
    progress: Callable[[datetime], None] | None = None,
) -> Replay:
    """Replay the shop's stream from its start to ``until`` (default: its end) through
    ``engine``; ``campaigns`` are the journeys' campaign ids (``journey-<name>``)."""
    truth = shop.truth.to_pandas()
    model = model or ResponseModel(truth, effect_days=shop.params["config"]["effect_days"])
    stream = journey_stream(shop)
    organic = stream.loc[stream["event"] == ORDER_COMPLETED, ["customer_id", "occurred_at"]]
    start = pd.Timestamp(shop.params["start"]).to_pydatetime()
    end = until or pd.Timestamp(shop.params["end"]).to_pydatetime()
    pending: list[tuple[datetime, str, dict]] = []
    for row in stream[stream["occurred_at"] < end].to_dict("records"):
        at = pd.Timestamp(row["occurred_at"]).to_pydatetime()
        heapq.heappush(pending, (at, row["message_id"], {**row, "occurred_at": at}))
    seen: set[str] = set()
    sizes: dict[str, int] = {}
    delivered: list[tuple] = []
    counts = {"events": 0, "thinned": 0, "extra": 0, "queued": 0, "delivered": 0}
    now, ticks = start, 0
    while now < end:
        nxt = min(now + tick, end)
        batch = []
        while pending and pending[0][0] < nxt:
            at, _, event = heapq.heappop(pending)
            if event["event"] == ORDER_COMPLETED and not model.keeps(
                event["customer_id"], event["message_id"], at
            ):
                continue
            batch.append(intake_row(event, received_at=at))
        clock.now = nxt
        if batch:
            store.intake.append(batch)
            engine.on_events(batch)
            counts["events"] += len(batch)
        ran = engine.run_due(nxt, DUE_LIMIT)
        for key, cid, customer, variant in _queued(store, campaigns, seen, sizes) if ran else ():
            counts["queued"] += 1
            if not model.customers.get(customer) or not model.customers[customer].consented:
                continue
            delivered.append((key, cid, customer, variant, nxt))
            for extra in model.deliver(customer, nxt):
                heapq.heappush(pending, (extra["occurred_at"], extra["message_id"], extra))
        now, ticks = nxt, ticks + 1
        if progress is not None and ticks % 96 == 0:
            progress(now)
    counts["thinned"], counts["extra"] = model.thinned, model.extra
    counts["delivered"] = len(delivered)
    frame = pd.DataFrame(delivered, columns=["message_key", "campaign_id", "customer_id",
                                             "variant", "at"])  # fmt: skip
    logger.info("journey replay: %s", counts)
    return Replay(model, organic, frame, counts["events"], ticks, counts)
