"""Live fields: what a customer's intake events since the snapshot add to their profile.

The events are those of ``repos.intake.for_customer`` (Segment's spec, newest last): any event
moves the last activity; e-commerce events (Segment's e-commerce spec v2 names) fill the rest:

- ``Product Viewed``: recently viewed products (newest first, distinct);
- ``Product Added`` / ``Product Removed``: the cart, product -> quantity (``quantity`` property,
  1 when absent; a product leaves the cart at 0);
- ``Order Completed``: an order since the snapshot (``order_id``, ``total`` or ``revenue``,
  ``products``); its products leave the cart (all of it when it lists none) and count as bought.

Pure functions over plain dicts: nothing here reads the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

VIEWED, ADDED, REMOVED, ORDERED = (
    "Product Viewed",
    "Product Added",
    "Product Removed",
    "Order Completed",
)


@dataclass(frozen=True)
class Touch:
    """One e-commerce event, as the live scorer counts them."""

    at: datetime
    event: str
    product_id: str | None


@dataclass
class LiveFields:
    events: int = 0
    """Intake events since the snapshot."""
    first_seen: datetime | None = None
    last_activity: datetime | None = None
    recently_viewed: list[str] = field(default_factory=list)
    cart: dict[str, int] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    """Orders since the snapshot: order_id, total, at, products."""
    touches: list[Touch] = field(default_factory=list)

    @property
    def bought(self) -> set[str]:
        return {p for o in self.orders for p in o["products"]}

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_since_snapshot": self.events,
            "last_activity": _iso(self.last_activity),
            "recently_viewed": list(self.recently_viewed),
            "cart": [{"product_id": p, "quantity": q} for p, q in self.cart.items()],
            "orders_since_snapshot": [
                {**o, "at": _iso(o["at"]), "products": list(o["products"])} for o in self.orders
            ],
        }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def product_of(props: Mapping[str, Any]) -> str | None:
    """The product an e-commerce event names: ``product_id``, else ``sku``, else ``id``."""
    for key in ("product_id", "sku", "id"):
        value = props.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def _quantity(props: Mapping[str, Any]) -> int:
    q = props.get("quantity", 1)
    try:
        n = int(q)
    except (TypeError, ValueError, OverflowError):
        return 1
    return max(n, 0)


def _money(props: Mapping[str, Any]) -> float | None:
    for key in ("total", "revenue", "value"):
        try:
            value = float(props[key])
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        if value == value and abs(value) != float("inf"):
            return value
    return None


def _order(props: Mapping[str, Any], at: datetime) -> dict[str, Any]:
    lines = props.get("products")
    products = []
    if isinstance(lines, list):
        products = [p for p in (product_of(x) for x in lines if isinstance(x, Mapping)) if p]
    order_id = props.get("order_id")
    return {
        "order_id": None if order_id is None else str(order_id),
        "total": _money(props),
        "at": at,
        "products": list(dict.fromkeys(products)),
    }


def live_fields(events: Iterable[Mapping[str, Any]], *, recent: int = 10) -> LiveFields:
    """The live fields of a customer's events (oldest first, as ``for_customer`` gives them)."""
    live = LiveFields()
    viewed: list[str] = []
    for e in events:
        at = e.get("occurred_at")
        if not isinstance(at, datetime):
            continue
        live.events += 1
        live.first_seen = at if live.first_seen is None else min(live.first_seen, at)
        live.last_activity = at if live.last_activity is None else max(live.last_activity, at)
        if e.get("type") != "track":
            continue
        name = e.get("event")
        props = e.get("properties") or {}
        if not isinstance(props, Mapping):
            props = {}
        product = product_of(props)
        if name in (VIEWED, ADDED, REMOVED, ORDERED):
            live.touches.append(Touch(at, str(name), product))
        if name == VIEWED and product:
            viewed.append(product)
        elif name == ADDED and product:
            live.cart[product] = live.cart.get(product, 0) + max(_quantity(props), 1)
        elif name == REMOVED and product and product in live.cart:
            left = live.cart[product] - max(_quantity(props), 1)
            if left > 0:
                live.cart[product] = left
            else:
                del live.cart[product]
        elif name == ORDERED:
            order = _order(props, at)
            live.orders.append(order)
            for p in order["products"] or list(live.cart):
                live.cart.pop(p, None)
    live.recently_viewed = list(dict.fromkeys(reversed(viewed)))[:recent]
    return live
