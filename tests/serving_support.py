"""A simulated shop built once per test session (profiles, promoted models, scores and
recommendations) for the serving tests, an app on a fresh SQLite or PostgreSQL store with the
snapshot published into it, and intake events the way the intake endpoint stores them."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from conftest import sql_store
from sendwise.config import Settings, init_project, load_settings
from sendwise.store.records import utcnow

_BUILT: dict[str, Path] = {}


def built_shop(root: Path) -> Path:
    """The project folder of a 1,500-customer simulated shop after `sendwise build` (the
    build's own publish goes to the project's SQLite store; tests publish into their own)."""
    if "shop" not in _BUILT:
        from sendwise.build import run_build
        from sendwise.ingest.load import ingest
        from sendwise.simulate import simulate_shop
        from sendwise.warehouse.connection import Warehouse
        from sendwise.warehouse.schema import LOADABLE

        folder = root / "serving-shop"
        init_project(folder)
        settings = load_settings(folder)
        with Warehouse.from_settings(settings) as wh:
            sim = simulate_shop(customers=1500, days=300, seed=7)
            paths = sim.write(folder / "files")
            for name in LOADABLE:
                if name in paths:
                    ingest(wh, settings, paths[name], table=name)
            # Pareto/NBD's likelihood warns (logaddexp of -inf) on this shop: a known issue of
            # the BTYD fit, not of serving, which only needs the build's output
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                run_build(wh, settings)
        _BUILT["shop"] = folder
    return _BUILT["shop"]


@contextmanager
def published(folder: Path, kind: str, tmp_path: Path) -> Iterator[tuple[Settings, Any, Any]]:
    """(settings, store, publish result) on a fresh ``kind`` store holding the snapshot."""
    from sendwise.serving.publish import publish
    from sendwise.warehouse.connection import Warehouse

    settings = load_settings(folder)
    with sql_store(kind, tmp_path) as store:
        with Warehouse.from_settings(settings) as wh:
            result = publish(wh, store, settings)
        yield settings, store, result


def track(
    customer_id: str | None,
    event: str,
    *,
    at: datetime | None = None,
    anonymous_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    """An intake_event row of a Segment track call, received now."""
    now = utcnow()
    return {
        "message_id": f"test-{uuid.uuid4()}",
        "type": "track",
        "event": event,
        "user_id": customer_id,
        "anonymous_id": anonymous_id,
        "customer_id": customer_id,
        "occurred_at": at or now,
        "received_at": now,
        "sent_at": None,
        "properties": properties,
        "traits": {},
        "context": {},
        "source": "tests",
    }
