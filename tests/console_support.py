"""A console shop for the console tests: a copy of the serving tests' built shop (1,500
simulated customers), one customer renamed to hostile markup in the warehouse and published
again, three users with generated passwords, and the app served by a real uvicorn."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sendwise.config import Settings, load_settings
from serving_support import built_shop
from tracking_support import running

JOURNEY = """
name = "abandoned_cart"
description = "Reminders after 1 hour and a day; exit on purchase"
[trigger]
event = "Product Added"
[goal]
event = "Order Completed"
within = "7d"
[[steps]]
id = "wait_1h"
wait = "1h"
[[steps]]
id = "reminder"
send = "newsletter.html"
[[steps]]
id = "bought"
if = "live_orders > 0"
then = "done"
else = "wait_1d"
[[steps]]
id = "wait_1d"
wait = "1d"
[[steps]]
id = "done"
exit = true
"""
HOSTILE = '<script>document.title="owned"</script><b>Eve</b>'


@dataclass
class ConsoleShop:
    settings: Settings
    base: str
    """The service's root URL (the console is under /console)."""
    passwords: dict[str, str]
    hostile_customer: str
    segment: str
    """The largest segment of the snapshot (the campaign's audience)."""


def make_shop(root: Path) -> tuple[Settings, dict[str, str], str]:
    from sendwise.console.users import add_user
    from sendwise.journeys.definition import loads_journey
    from sendwise.journeys.service import save_journey
    from sendwise.journeys.validation import KnownNames
    from sendwise.serving.publish import publish
    from sendwise.store import open_store
    from sendwise.store.records import utcnow
    from sendwise.warehouse.connection import Warehouse

    folder = root / "console-shop"
    shutil.copytree(built_shop(root), folder)
    settings = load_settings(folder)
    with Warehouse.from_settings(settings) as wh:
        duck = wh.con.con
        hostile = duck.execute("SELECT min(customer_id) FROM profile").fetchone()[0]
        duck.execute("UPDATE profile SET first_name = ? WHERE customer_id = ?", [HOSTILE, hostile])
        with open_store(settings) as store:
            publish(wh, store, settings)
            passwords = {n: secrets.token_urlsafe(12) for n in ("ana", "mia", "vic")}
            for name, role in (("ana", "admin"), ("mia", "marketer"), ("vic", "viewer")):
                add_user(store, name, role, passwords[name])
            known = KnownNames(templates=frozenset({"newsletter.html"}))
            save_journey(store, loads_journey(JOURNEY), known, utcnow())
    return settings, passwords, str(hostile)


@contextmanager
def console_shop(root: Path, host: str = "localhost") -> Iterator[ConsoleShop]:
    from sendwise.api.app import create_app
    from sendwise.store import open_store

    settings, passwords, hostile = make_shop(root)
    with open_store(settings) as store:
        info = store.snapshots.info(store.snapshots.current_version())
        sizes = info.meta["segments"]
    segment = max(sizes, key=lambda s: (sizes[s], s))
    with running(create_app(settings)) as base:
        # the browser asks for localhost: a Secure cookie is sent to it over plain HTTP
        yield ConsoleShop(settings, base.replace("127.0.0.1", host), passwords, hostile, segment)
