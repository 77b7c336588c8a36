"""The abandoned cart end to end, on a real uvicorn service with its embedded journey worker,
events sent by Segment's own Python library, on SQLite and PostgreSQL: the customer who left
a cart gets exactly one reminder in the outbox, the one who bought gets none, and the one who
unsubscribed (one click, while waiting) gets nothing."""

from __future__ import annotations

import email
import time
from pathlib import Path
from typing import Any

import httpx
from segment.analytics import Client

from journey_support import KNOWN
from sendwise.access import Scope, create_key
from sendwise.api import create_app
from sendwise.delivery.links import message_links
from sendwise.journeys.definition import loads_journey
from sendwise.journeys.service import save_journey
from sendwise.keys import signing_key
from sendwise.store.records import utcnow
from sendwise.store.repositories import CampaignRecord
from tracking_support import running

CART_FAST = """
name = "abandoned_cart"
[trigger]
event = "Product Added"
[goal]
event = "Order Completed"
within = "7d"
[[steps]]
id = "wait"
wait = "4s"
[[steps]]
id = "reminder_1"
send = "abandoned-cart.html"
[[steps]]
id = "wait_more"
wait = "1h"
[[steps]]
id = "reminder_2"
send = "abandoned-cart.html"
"""


def outbox(settings: Any) -> dict[str, list[str]]:
    """Recipient address -> message keys of the .eml files in the outbox."""
    folder = settings.path(str(settings.delivery.outbox))
    out: dict[str, list[str]] = {}
    for path in sorted(Path(folder).glob("*.eml")) if Path(folder).is_dir() else []:
        msg = email.message_from_bytes(path.read_bytes())
        out.setdefault(str(msg["To"]), []).append(path.stem)
    return out


def wait_until(check: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not check():
        time.sleep(0.2)


def test_abandoned_cart_on_a_real_service(make_project: Any, store: Any) -> None:
    # consent straight from identify (no double opt-in): this test is about the cart journey;
    # tests/test_privacy_optin.py covers the confirmation step
    settings, _wh = make_project(
        campaigns={"quiet_start": None, "frequency_cap": None}, privacy={"double_opt_in": False}
    )
    save_journey(store, loads_journey(CART_FAST), KNOWN, utcnow())
    write = create_key(store, "website", Scope.WRITE, at=utcnow())
    # C unsubscribes through the one-click link of an earlier newsletter
    store.campaigns.save(CampaignRecord("news-1", "News", "created", {}), utcnow())
    key_c = "c" * 32
    store.messages.add_plan("news-1", [dict(message_key=key_c, customer_id="C",
                                           email="c@example.com", variant="A", template="x",
                                           status="sent", reason=None, scheduled_at=None,
                                           timezone=None)], utcnow())  # fmt: skip
    app = create_app(settings, store=store, journeys=True)
    with running(app) as url:
        client = Client(write, host=url, max_retries=1, upload_size=10)
        for cid in "ABC":
            client.identify(cid, {"email": f"{cid.lower()}@example.com", "email_consent": True})
        client.track("A", "Product Added", {"product_id": "sku1", "price": 30})
        client.track("B", "Product Added", {"product_id": "sku2", "price": 12})
        client.track("C", "Product Added", {"product_id": "sku3", "price": 50})
        client.flush()
        client.track("B", "Order Completed", {"order_id": "o1", "revenue": 12})
        client.flush()
        # all three entered within the worker's first ticks; B's order ended B's
        wait_until(lambda: len(store.journeys.states("abandoned_cart")) == 3, 10)
        link = message_links(url, signing_key(settings.delivery), key_c)["unsubscribe"]
        answer = httpx.post(link, data={"List-Unsubscribe": "One-Click"})
        assert answer.status_code == 200
        wait_until(lambda: "a@example.com" in outbox(settings), 20)
        time.sleep(2)  # a tick or more: nothing else may come
        client.shutdown()
    sent = outbox(settings)
    assert list(sent) == ["a@example.com"] and len(sent["a@example.com"]) == 1
    frame = store.messages.plan_frame("journey-abandoned_cart")
    rows = dict(zip(frame["customer_id"], frame["status"], strict=True))
    assert rows == {"A": "sent", "C": "skipped"}
    assert frame.loc[frame["customer_id"] == "C", "reason"].iloc[0].startswith("suppressed")
    by = {s.customer_id: s for s in store.journeys.states("abandoned_cart")}
    assert by["B"].exit_reason == "goal" and by["B"].goal_value == 12.0
    assert by["A"].step == "wait_more" and by["A"].status == "waiting"
