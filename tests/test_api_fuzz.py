"""Fuzzing the whole service through its own OpenAPI (schemathesis): every operation of
``/openapi.json``, with generated valid and invalid inputs, sent to a real uvicorn over a real
store, as an admin, a read, a write key and no key. No answer may be a 500, and every answer
whose status the schema documents must match the documented schema.

The service is built with :func:`sendwise.api.create_app` over a temporary project whose store
holds API keys of each scope, email events, webhook subscriptions and a dead letter. With
``SENDWISE_FUZZ_PUBLISHED=1`` (and ``sendwise publish`` present), a simulated shop is built
and its snapshot published into the store first, so that profile and segment routes meet real
customers (the build adds about three minutes). The number of examples per operation is
bounded so that the default run stays under about a minute.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from sendwise.access import create_key
from sendwise.api import create_app
from sendwise.config import Settings, init_project, load_settings
from sendwise.serving.hooks import WebhookEvent, add_subscription, enqueue
from sendwise.store import Store
from sendwise.store.claims import utcnow
from sendwise.store.webhooks import Outcome
from tracking_support import running

EXAMPLES = 40
"""Examples per operation and key; raise it for a longer local run."""
SCOPES = ("admin", "read", "write", "none")
Service = tuple[str, dict[str, str], dict[str, str]]
"""Base URL, API key by scope, known values of path parameters."""


def seed(store: Store) -> tuple[dict[str, str], dict[str, str]]:
    """Keys of each scope, email events, webhook subscriptions and a dead letter; returns the
    keys and known values of path parameters."""
    now = utcnow()
    keys = {s: create_key(store, f"fuzz-{s}", s, at=now) for s in ("admin", "read", "write")}
    store.events.add(
        [
            dict(event_id=f"e{i}", customer_id=f"c{i}", email=f"c{i}@example.com",
                 message_id=f"m{i}", campaign_id="spring", variant="A",
                 type=("send", "open", "unsubscribe")[i % 3], occurred_at=now)
            for i in range(9)
        ]
    )  # fmt: skip
    sub = add_subscription(store, "http://127.0.0.1:9/nobody", ["*"], at=now)
    add_subscription(store, "https://crm.example/hooks", ["message.sent"], at=now)
    enqueue(store, [WebhookEvent("segment.entered", {"customer_id": "c1"}, now)], at=now)
    (claimed,) = store.webhooks.claim(now, 10, now + timedelta(minutes=1))
    store.webhooks.record([Outcome(claimed.outbox_id, "dead", error="seeded")], now)
    return keys, {"subscription_id": sub.subscription_id}


def publish_shop(store: Store, root: Path) -> dict[str, str]:
    """A simulated shop built and published into ``store`` (skips without a publish step);
    returns a published customer and one of their segments."""
    try:
        from sendwise.serving.publish import publish
        from serving_support import built_shop
    except ImportError:
        pytest.skip("no `sendwise publish` in this tree to publish a snapshot with")
    from sendwise.warehouse.connection import Warehouse

    shop = load_settings(built_shop(root))
    with Warehouse.from_settings(shop) as wh:
        result = publish(wh, store, shop)
    for profile in store.snapshots.profiles(result.version):
        if profile["segments"]:
            return {"customer_id": profile["customer_id"], "name": profile["segments"][0]}
    return {}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    folder = tmp_path_factory.mktemp("fuzz") / "shop"
    init_project(folder)
    settings: Settings = load_settings(
        folder,
        delivery={"signing_key": secrets.token_urlsafe(32)},
        api={"key_cache_seconds": 30, "rate_per_second": 1e6},
        webhooks={"enabled": False},
    )
    store = Store(settings.store_url())
    keys, known = seed(store)
    if os.environ.get("SENDWISE_FUZZ_PUBLISHED") == "1":
        known.update(publish_shop(store, tmp_path_factory.mktemp("shop")))
    with running(create_app(settings, store=store)) as url:
        yield url, keys, known
    store.close()


def openapi() -> dict[str, Any]:
    """The service's OpenAPI document, as /openapi.json serves it (building the app opens
    nothing: the store is opened by its lifespan)."""
    settings = Settings(delivery={"signing_key": secrets.token_urlsafe(32)})
    return create_app(settings).openapi()


schema = schemathesis.openapi.from_dict(openapi())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_server_error_and_no_schema_violation(case: Any, service: Service) -> None:
    """Each generated request is sent with each kind of key (admin first: it reaches the
    handlers; the others meet the auth and scope checks), then once more as admin with the
    path parameters that name something stored (a subscription, a published customer and
    segment), so that the handlers behind the 404s are fuzzed too."""
    url, keys, known = service
    checks = [not_a_server_error, response_schema_conformance]
    for scope in SCOPES:
        headers = {} if scope == "none" else {"Authorization": f"Bearer {keys[scope]}"}
        case.call_and_validate(
            base_url=url, headers=headers, checks=checks, allow_redirects=False, timeout=10
        )
    params = case.path_parameters or {}
    if any(name in known for name in params):
        case.path_parameters = {**params, **{k: v for k, v in known.items() if k in params}}
        case.call_and_validate(
            base_url=url,
            headers={"Authorization": f"Bearer {keys['admin']}"},
            checks=checks,
            allow_redirects=False,
            timeout=10,
        )


def test_the_fuzzed_schema_is_the_served_one(service: Service) -> None:
    url, _keys, _known = service
    served = httpx.get(f"{url}/openapi.json").json()
    assert served == schema.raw_schema
    assert httpx.get(f"{url}/docs").status_code == 200
    paths = set(served["paths"])
    assert {"/v1/webhooks", "/v1/webhooks/dead", "/v1/webhooks/{subscription_id}"} <= paths
