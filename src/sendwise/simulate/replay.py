"""Feeding simulated responses to sendwise: the tracking events (through the HTTP service or
straight into the store) and the orders (into the warehouse through the ingest)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd

from sendwise.config import Settings
from sendwise.delivery.links import sign
from sendwise.delivery.tracking_links import click_url
from sendwise.ingest.load import ingest
from sendwise.simulate.responses import Responses
from sendwise.store.connection import Store
from sendwise.tracking import events as tracking_events
from sendwise.tracking.recorder import write_events


def load_orders(wh, settings: Settings, responses: Responses, name: str = "campaign") -> int:
    """Ingest the simulated orders and their lines (one line each, a product of the shop's
    catalogue), validated and merged like any order file. Returns the orders added."""
    orders = responses.orders
    if orders.empty:
        return 0
    products = wh.table("product").select("product_id").order_by("product_id").to_pandas()
    ids = products["product_id"].to_numpy()
    folder = settings.path("simulated")
    folder.mkdir(parents=True, exist_ok=True)
    head = orders.drop(columns="total")
    lines = pd.DataFrame(
        {
            "order_id": orders["order_id"],
            "line_number": 1,
            "product_id": ids[pd.util.hash_array(orders["order_id"].to_numpy()) % len(ids)],
            "quantity": 1,
            "unit_price": orders["total"],
        }
    )
    head.to_parquet(folder / f"orders_{name}.parquet", index=False)
    lines.to_parquet(folder / f"order_lines_{name}.parquet", index=False)
    added = ingest(wh, settings, folder / f"orders_{name}.parquet", table="order", force=True)
    ingest(wh, settings, folder / f"order_lines_{name}.parquet", table="order_line", force=True)
    return added.inserted


def requests(responses: Responses, key: bytes) -> list[tuple[str, str, str, datetime]]:
    """(method, path, user agent, time) of each event, as a mail client would make it."""
    out = []
    for e in responses.events.itertuples(index=False):
        if e.type == "open":
            path = f"/o/{sign(key, f'open:{e.message_key}')}.gif"
            method = "GET"
        elif e.type == "click":
            path = click_url("", key, e.message_key, e.url)
            method = "GET"
        else:
            path = f"/unsubscribe/{sign(key, f'unsubscribe:{e.message_key}')}"
            method = "POST"
        out.append((method, path, e.user_agent, pd.Timestamp(e.at).to_pydatetime()))
    return out


def replay_http(responses: Responses, base_url: str, key: bytes, set_clock: Callable) -> int:
    """Send every event to a running service in time order (the service's clock is set to
    each event's time first), as real mail clients would. Returns the requests answered 2xx/3xx."""
    import httpx

    ok = 0
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for method, path, agent, at in requests(responses, key):
            set_clock(at)
            body = b"List-Unsubscribe=One-Click" if method == "POST" else None
            r = http.request(method, path, headers={"user-agent": agent}, content=body)
            ok += r.status_code < 400
    return ok


def record_direct(store: Store, responses: Responses) -> int:
    """The same events written straight into the store (the demo: no server needed)."""
    rows = []
    for e in responses.events.itertuples(index=False):
        at = pd.Timestamp(e.at).to_pydatetime()
        if e.type == "unsubscribe":
            rows.append(tracking_events.unsubscribe(e.message_key, user_agent=e.user_agent, at=at))
        else:
            rows.append(
                tracking_events.engagement(
                    e.type, e.message_key, user_agent=e.user_agent, ip=None, url=e.url, at=at
                )
            )
    for start in range(0, len(rows), 5000):
        write_events(store, rows[start : start + 5000])
    return len(rows)
