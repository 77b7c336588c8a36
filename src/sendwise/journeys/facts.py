"""What a journey knows about one customer when a step runs: the live profile (snapshot row,
scores, live fields since the snapshot), the address and time zone to send to.

Read through :class:`sendwise.serving.service.Serving` (the same reads as ``GET /v1/profiles``),
so a customer first seen a minute ago, or one nothing is published for yet, still has facts:
the address comes from the profile or else from their newest ``identify`` traits.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass
class Facts:
    customer_id: str
    values: dict[str, Any] = field(default_factory=dict)
    """Profile fields, scores and the live fields (validation.LIVE_FIELDS) by name."""
    email: str | None = None
    timezone: str | None = None
    best_send_hour: int | None = None


class FactSource:
    """Facts per customer, each read once per batch (``clear`` between batches).

    ``batch(ids)`` names the customers of the batch being run: the first of them whose facts
    are asked for has those of every one still unread read with it, the ``identify`` traits of
    them all in one read of the intake log (``intake.for_customers``) instead of one each. A
    batch whose steps read no facts (waits only) reads nothing."""

    IDENTIFIES = 200
    """A customer's newest ``identify`` calls whose traits give the address and time zone."""

    def __init__(self, store: Any, serving: Any, clock: Any, profiles: Any = None) -> None:
        from sendwise.serving.batch_profiles import BatchProfiles

        self.store, self.serving, self.clock = store, serving, clock
        if profiles is None and serving is not None:
            profiles = BatchProfiles(serving)
        self.profiles = profiles
        """The live profiles, read together for the batch (shared with the live renderer)."""
        self._cache: dict[str, Facts] = {}
        self._batch: list[str] = []

    def clear(self) -> None:
        self._cache.clear()
        self._batch = []

    def batch(self, customer_ids: Sequence[str]) -> None:
        self._batch = list(dict.fromkeys(customer_ids))

    def __call__(self, customer_id: str) -> Facts:
        if customer_id not in self._cache:
            todo = [c for c in self._batch if c not in self._cache]
            self._batch = []
            if customer_id not in todo:
                todo.append(customer_id)
            try:
                self._cache.update(self._read_many(todo))
            except Exception:  # one customer's failing read must fail no one else's step:
                if len(todo) == 1:  # the others are read one by one when they are asked for
                    raise
                self._cache.update(self._read_many([customer_id]))
        return self._cache[customer_id]

    def _read_many(self, customer_ids: Sequence[str]) -> dict[str, Facts]:
        lps = self.profiles.get_many(customer_ids, fresh=True) if self.profiles is not None else {}
        read = {cid: self._profile_facts(cid, lps.get(cid)) for cid in customer_ids}
        lacking = [c for c, f in read.items() if f.email is None or f.timezone is None]
        if lacking:
            events = self.store.intake.for_customers(
                lacking, types=("identify",), limit=self.IDENTIFIES
            )
            for cid in lacking:
                facts, traits = read[cid], _traits(events.get(cid, ()))
                facts.email = facts.email or _text(traits.get("email"))
                facts.timezone = facts.timezone or _text(traits.get("timezone"))
        return read

    def _profile_facts(self, customer_id: str, lp: Any) -> Facts:
        """The facts of the live profile ``lp`` (None: the customer has none; no address yet
        when it holds none)."""
        facts = Facts(customer_id)
        values: dict[str, Any] = {}
        if lp is not None:
            row = lp.data()
            values.update(row.get("profile") or {})
            values.update(row.get("scores") or {})
            live = lp.live
            values["cart_items"] = sum(live.cart.values())
            values["live_orders"] = len(live.orders)
            values["live_events"] = live.events
            if live.last_activity is not None:
                age = (self.clock() - live.last_activity).total_seconds() / 86400
                values["days_since_last_activity"] = max(age, 0.0)
        facts.values = values
        facts.email = _text(values.get("email"))
        facts.timezone = _text(values.get("timezone"))
        hour = values.get("best_send_hour")
        if isinstance(hour, int | float) and hour == hour and 0 <= hour < 24:
            facts.best_send_hour = int(hour)
        return facts


def _traits(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``identify`` traits of a customer's events (oldest first), merged, newest wins."""
    merged: dict[str, Any] = {}
    for event in events:
        if event.get("type") == "identify" and isinstance(event.get("traits"), dict):
            merged.update(event["traits"])
    return merged


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def local_due(now: datetime, hour: int, minute: int, zone_name: str | None) -> datetime:
    """The next time at or after ``now`` (naive UTC) when the clock in ``zone_name`` (UTC when
    unknown) reads hour:minute, as naive UTC."""
    from datetime import UTC, timedelta

    from sendwise.delivery.policy import _zone

    zone = _zone(zone_name)
    local = now.replace(tzinfo=UTC).astimezone(zone)
    target = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target < local:
        target = (local + timedelta(days=1)).replace(hour=hour, minute=minute, second=0,
                                                     microsecond=0)  # fmt: skip
    return target.astimezone(UTC).replace(tzinfo=None)
