"""Fuzzing the whole service through its own OpenAPI (schemathesis): every operation of
``/openapi.json``, with generated valid and invalid inputs, sent to a real uvicorn over a real
store, as an admin, a read, a write key and no key. No answer may be a 500, and every answer
whose status the schema documents must match the documented schema.

The service is built with :func:`sendwise.api.create_app` over a temporary project whose store
holds API keys of each scope, a campaign with messages and email events, webhook subscriptions
and a dead letter (and, when a publish step exists, a published snapshot). The number of
examples per operation is bounded so that the run stays under about two minutes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import timedelta
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


def seed(store: Store) -> dict[str, str]:
    """Keys of each scope, email events, webhook subscriptions and a dead letter."""
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
    assert sub.active
    return keys


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    folder = tmp_path_factory.mktemp("fuzz") / "shop"
    init_project(folder)
    settings: Settings = load_settings(
        folder,
        delivery={"signing_key": secrets.token_urlsafe(32)},
        api={"key_cache_seconds": 30, "rate_per_second": 1e6},
        webhooks={"enabled": False},
    )
    store = Store(settings.store_url())
    keys = seed(store)
    with running(create_app(settings, store=store)) as url:
        yield url, keys
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
def test_no_server_error_and_no_schema_violation(
    case: Any, service: tuple[str, dict[str, str]]
) -> None:
    """Each generated request is sent with each kind of key (admin first: it reaches the
    handlers; the others meet the auth and scope checks)."""
    url, keys = service
    for scope in SCOPES:
        headers = {} if scope == "none" else {"Authorization": f"Bearer {keys[scope]}"}
        case.call_and_validate(
            base_url=url,
            headers=headers,
            checks=[not_a_server_error, response_schema_conformance],
            allow_redirects=False,
            timeout=10,
        )


def test_the_fuzzed_schema_is_the_served_one(service: tuple[str, dict[str, str]]) -> None:
    url, _keys = service
    served = httpx.get(f"{url}/openapi.json").json()
    assert served == schema.raw_schema
    assert httpx.get(f"{url}/docs").status_code == 200
    paths = set(served["paths"])
    assert {"/v1/webhooks", "/v1/webhooks/dead", "/v1/webhooks/{subscription_id}"} <= paths
