"""The demo's live step: one customer views a product and puts another in the cart, and their
profile and recommendations change on the next read, with no rebuild."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sendwise.store.records import utcnow

if TYPE_CHECKING:
    from sendwise.config import Settings


@dataclass
class LiveDemo:
    customer_id: str
    viewed: str
    added: str
    before: dict[str, Any]
    """The profile's live fields and top recommendations before the events."""
    after: dict[str, Any]
    milliseconds: float
    """From storing the events to the profile and recommendations read back."""


def _event(customer_id: str, name: str, product_id: str) -> dict[str, Any]:
    now = utcnow()
    return {"message_id": f"demo-{uuid.uuid4()}", "type": "track", "event": name,
            "user_id": customer_id, "anonymous_id": None, "customer_id": customer_id,
            "occurred_at": now, "received_at": now, "sent_at": None,
            "properties": {"product_id": product_id}, "traits": {}, "context": {},
            "source": "demo"}  # fmt: skip


def _read(serving: Any, customer_id: str) -> dict[str, Any]:
    profile = serving.profile(customer_id)
    recs = serving.recommendations(customer_id, 5)["recommendations"]
    return {"live": profile["live"], "recommendations": [r["product_id"] for r in recs]}


def live_demo(settings: Settings, customer_id: str) -> LiveDemo:
    """Store a ``Product Viewed`` and a ``Product Added`` for the customer in the intake log
    (as the intake endpoint does) and read the profile and recommendations before and after."""
    import time

    from sendwise.serving.service import Serving
    from sendwise.store import open_store

    with open_store(settings) as store:
        serving = Serving(store, settings)
        before = _read(serving, customer_id)
        version = serving.reads.current_version()
        popular = serving.info(version).meta.get("popular", []) if version else []
        others = [p for p in popular if p not in before["recommendations"]]
        viewed, added = others[0], before["recommendations"][0]
        started = time.perf_counter()
        store.intake.append(
            [
                _event(customer_id, "Product Viewed", viewed),
                _event(customer_id, "Product Added", added),
            ]
        )
        after = _read(serving, customer_id)
        ms = (time.perf_counter() - started) * 1000
    return LiveDemo(customer_id, viewed, added, before, after, ms)
