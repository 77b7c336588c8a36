"""What a journey knows about one customer when a step runs: the live profile (snapshot row,
scores, live fields since the snapshot), the address and time zone to send to.

Read through :class:`sendwise.serving.service.Serving` (the same reads as ``GET /v1/profiles``),
so a customer first seen a minute ago, or one nothing is published for yet, still has facts:
the address comes from the profile or else from their newest ``identify`` traits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sendwise.errors import NotFoundError


@dataclass
class Facts:
    customer_id: str
    values: dict[str, Any] = field(default_factory=dict)
    """Profile fields, scores and the live fields (validation.LIVE_FIELDS) by name."""
    email: str | None = None
    timezone: str | None = None
    best_send_hour: int | None = None


class FactSource:
    """Facts per customer, each read once per batch (``clear`` between batches)."""

    def __init__(self, store: Any, serving: Any, clock: Any) -> None:
        self.store, self.serving, self.clock = store, serving, clock
        self._cache: dict[str, Facts] = {}

    def clear(self) -> None:
        self._cache.clear()

    def __call__(self, customer_id: str) -> Facts:
        if customer_id not in self._cache:
            self._cache[customer_id] = self._read(customer_id)
        return self._cache[customer_id]

    def _read(self, customer_id: str) -> Facts:
        facts = Facts(customer_id)
        values: dict[str, Any] = {}
        if self.serving is not None:
            try:
                lp = self.serving.live_profile(customer_id)
            except NotFoundError:
                lp = None
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
        if facts.email is None or facts.timezone is None:
            traits = self._traits(customer_id)
            facts.email = facts.email or _text(traits.get("email"))
            facts.timezone = facts.timezone or _text(traits.get("timezone"))
        return facts

    def _traits(self, customer_id: str) -> dict[str, Any]:
        """The newest identify traits of the customer (merged, newest wins)."""
        merged: dict[str, Any] = {}
        for event in self.store.intake.for_customer(customer_id, limit=200):
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
