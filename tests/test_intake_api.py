"""The intake API against Segment's own Python library, on a real uvicorn, on SQLite and
PostgreSQL: every call stored once, then synced into the warehouse; replays, wrong keys,
oversized and malformed batches store nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from segment.analytics import Client
from segment.analytics.request import post as segment_post

from sendwise.access import Scope, create_key
from sendwise.api import create_app
from sendwise.intake.sync import sync_intake
from sendwise.store.records import utcnow
from tracking_support import running


def stored(store) -> list[dict]:
    rows, seq = [], 0
    while page := store.intake.since(seq, 10_000):
        rows += page
        seq = int(page[-1]["seq"])
    return rows


@pytest.fixture
def service(project, store):
    """(settings, warehouse, store, base URL, write key, read key) of a running service."""
    settings, wh = project
    write = create_key(store, "website", Scope.WRITE, at=utcnow())
    read = create_key(store, "console", Scope.READ, at=utcnow())
    with running(create_app(settings, store=store)) as url:
        yield settings, wh, store, url, write, read


def test_segment_library_calls_are_stored_once_then_synced(service, sql) -> None:
    settings, wh, store, url, write, _ = service
    failures: list = []
    client = Client(
        write,
        host=url,
        on_error=lambda exc, batch: failures.append(exc),
        max_retries=1,
        upload_size=100,
    )
    client.identify(
        "C1",
        {"email": "Ann@Example.com", "first_name": "Ann", "email_consent": True},
        anonymous_id="anon-1",
        message_id="id-1",
    )
    client.track("C1", "Product Viewed", {"product_id": "sku1", "price": 9.5}, message_id="t-1")
    client.page("C1", "Docs", "Getting started", {"url": "https://shop.example/docs"},
                message_id="p-1")  # fmt: skip
    client.track(None, "Product Viewed", {"product_id": "sku2"}, anonymous_id="anon-2",
                 message_id="t-anon")  # fmt: skip
    client.alias("anon-2", "C1", message_id="a-1")
    client.flush()
    client.shutdown()
    # a batch of 1,000 calls in one request, built and sent by the library's own transport
    now = datetime.now(UTC).isoformat()
    batch = [
        {"type": "track", "userId": f"C{i % 7}", "event": "Product Added", "messageId": f"b-{i}",
         "properties": {"product_id": f"sku{i % 13}", "quantity": 1}, "timestamp": now}
        for i in range(1000)
    ]  # fmt: skip
    assert segment_post(write, host=url, batch=batch).status_code == 200
    assert failures == []

    rows = stored(store)
    ids = [r["message_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 1005
    by_id = {r["message_id"]: r for r in rows}
    assert by_id["id-1"]["traits"]["email_consent"] is True
    assert by_id["t-1"]["properties"] == {"product_id": "sku1", "price": 9.5}
    assert (by_id["p-1"]["type"], by_id["p-1"]["event"]) == ("page", "Getting started")
    assert by_id["a-1"]["anonymous_id"] == "anon-2"
    assert {r["source"] for r in rows} == {"website"}

    # the consent of the identify holds for the send policy at once, before any sync: pending
    # under double opt-in (the default) until the confirmation email's link is followed
    assert [c["status"] for c in store.consents.changes().to_dict("records")] == ["pending"]

    report = sync_intake(store, wh, settings)
    assert (report.read, report.inserted, report.rejected) == (1005, 1005, 0)
    assert sql(wh, "SELECT count(*), count(DISTINCT message_id) FROM event") == [(1005, 1005)]
    assert sql(
        wh, "SELECT customer_id, email, first_name FROM customer WHERE customer_id = 'C1'"
    ) == [("C1", "ann@example.com", "Ann")]
    assert report.consents == 0  # already recorded: sync is the backstop
    assert len(store.consents.changes()) == 1
    assert sql(wh, "SELECT customer_id, status, source FROM consent") == [
        ("C1", "granted", "identify")
    ]
    # the anonymous view before the alias is the customer's; so is the identify's anonymous id
    assert sql(wh, "SELECT customer_id, identity FROM event WHERE message_id = 't-anon'") == [
        ("C1", "anonymous_id")
    ]
    assert sorted(sql(wh, "SELECT anonymous_id, customer_id FROM identity")) == [
        ("anon-1", "C1"),
        ("anon-2", "C1"),
    ]
    # exactly once: a second sync reads nothing, a replay of the watermark adds nothing
    assert sync_intake(store, wh, settings).read == 0
    store.watermarks.set("warehouse.intake", 0, utcnow())
    again = sync_intake(store, wh, settings)
    assert (again.read, again.inserted) == (1005, 0)
    assert sql(wh, "SELECT count(*) FROM event") == [(1005,)]


def test_replayed_message_ids_are_stored_once(service) -> None:
    _, _, store, url, write, _ = service
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E", "messageId": f"m{i}"}
                       for i in range(20)]}  # fmt: skip
    with httpx.Client(base_url=url, auth=(write, "")) as http:
        for _ in range(3):
            assert http.post("/v1/batch", json=batch).json() == {"success": True}
        one = {"userId": "u", "event": "E", "messageId": "m3"}
        assert http.post("/v1/track", json=one).status_code == 200
    assert sorted(r["message_id"] for r in stored(store)) == sorted(f"m{i}" for i in range(20))


def test_wrong_key_401_read_key_403_and_nothing_stored(service) -> None:
    _, _, store, url, write, read = service
    call = {"userId": "u", "event": "E", "messageId": "x"}
    for auth, status in (
        (None, 401),
        (("sw_write_nope_nope", ""), 401),
        ((write + "x", ""), 401),
        ((read, ""), 403),
    ):
        assert httpx.post(f"{url}/v1/track", json=call, auth=auth).status_code == status
    bearer = {"Authorization": f"Bearer {write}"}
    assert httpx.post(f"{url}/v1/track", json=call, headers=bearer).status_code == 200
    assert [r["message_id"] for r in stored(store)] == ["x"]


def test_oversized_and_malformed_batches_store_nothing(service) -> None:
    _, _, store, url, write, _ = service
    ok = {"type": "track", "userId": "u", "event": "E", "properties": {"p": "x" * 20_000}}
    big = {"batch": [{**ok, "messageId": f"big{i}"} for i in range(30)]}  # ~600 KB
    with httpx.Client(base_url=url, auth=(write, "")) as http:
        answer = http.post("/v1/batch", json=big)
        assert answer.status_code == 400
        assert answer.json()["field"] == "body" and "500 KB" in answer.json()["error"]
        calls = [{**ok, "messageId": f"m{i}", "properties": {}} for i in range(5)]
        calls[3] = {"type": "track", "userId": "u", "messageId": "m3"}
        answer = http.post("/v1/batch", json={"batch": calls})
        assert answer.status_code == 400
        assert (answer.json()["index"], answer.json()["field"]) == (3, "event")
        single = http.post("/v1/track", json={"userId": "u", "event": "E", "properties": "no"})
        assert single.status_code == 400 and single.json()["field"] == "properties"
        raw = http.post(
            "/v1/identify", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert raw.status_code == 400 and raw.json()["field"] == "body"
        huge = http.post("/v1/track", content=json.dumps({"userId": "u", "event": "E",
                         "properties": {"p": "y" * 40_000}}).encode())  # fmt: skip
        assert huge.status_code == 400
    assert stored(store) == []


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=10,
)  # fmt: skip
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.dictionaries(st.sampled_from(["batch", "userId", "event", "type", "messageId",
                                       "anonymousId", "timestamp", "sentAt", "properties"]),
                      json_values).map(lambda v: json.dumps(v).encode())
)  # fmt: skip


@pytest.fixture(scope="module")
def fuzz_service(tmp_path_factory):
    from sendwise.config import init_project, load_settings
    from sendwise.store import Store

    folder = tmp_path_factory.mktemp("fuzz")
    init_project(folder)
    with Store(f"sqlite:///{folder / 'store.sqlite'}") as store:
        key = create_key(store, "fuzz", Scope.WRITE, rate_per_second=1e6, at=utcnow())
        with running(create_app(load_settings(folder), store=store)) as url:
            yield url, key, store


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    kind=st.sampled_from(["track", "identify", "page", "screen", "group", "alias", "batch"]),
    body=bodies,
    encoding=st.sampled_from([None, None, "gzip", "identity", "br"]),
)
def test_http_never_answers_500(fuzz_service, kind: str, body: bytes, encoding) -> None:
    """Any body, any Content-Encoding: 200 (stored) or 400 with a JSON error naming the field."""
    url, key, store = fuzz_service
    headers = {"content-type": "application/json"}
    if encoding:
        headers["content-encoding"] = encoding
    before = store.intake.max_seq()
    answer = httpx.post(f"{url}/v1/{kind}", content=body, headers=headers, auth=(key, ""))
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["field"]
        assert store.intake.max_seq() == before
