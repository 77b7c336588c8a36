"""Segment JSON Lines (``--preset segment``) and identity resolution: which customer each event
belongs to, by id, by email, or through an anonymous id that a later identify call revealed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sendwise.ingest.load import IngestReport, ingest


def jsonl(settings, name: str, calls: list[dict]) -> Path:
    path = settings.path(name)
    path.write_text("".join(json.dumps(c) + "\n" for c in calls), encoding="utf-8")
    return path


def segment(project, name: str, calls: list[dict], **kw) -> IngestReport:
    settings, wh = project
    report = ingest(wh, settings, jsonl(settings, name, calls), preset="segment", **kw)
    assert report.loaded + report.rejected == report.read
    return report


def track(mid: str, at: str, event: str = "Product Viewed", **fields) -> dict:
    return {"type": "track", "event": event, "messageId": mid, "timestamp": at, **fields}


def identify(mid: str, at: str, user: str, anon: str | None = None, **traits) -> dict:
    call = {"type": "identify", "messageId": mid, "timestamp": at, "userId": user}
    if anon:
        call["anonymousId"] = anon
    if traits:
        call["traits"] = traits
    return call


def events(wh, sql) -> dict[str, tuple]:
    """message_id -> (customer_id, identity)."""
    rows = sql(wh, "SELECT message_id, customer_id, identity FROM event")
    return {m: (c, i) for m, c, i in rows}


@pytest.fixture
def crm(project):
    """A project whose CRM export (loaded with --table customer) holds c1 and c2."""
    settings, wh = project
    path = settings.path("crm.csv")
    path.write_text("customer_id,email\nc1,known@shop.com\nc2,other@shop.com\n", encoding="utf-8")
    ingest(wh, settings, path, table="customer")
    return project


def test_track_with_user_id_matches_by_id(crm, sql) -> None:
    r = segment(
        crm,
        "s.jsonl",
        [
            track("m1", "2024-05-01T10:00:00Z", userId="c1", properties={"product_id": "sku1"}),
            track("m2", "2024-05-01T10:01:00+02:00", userId="c2"),
        ],
    )
    assert (r.read, r.loaded, r.rejected) == (2, 2, 0)
    _, wh = crm
    assert events(wh, sql) == {"m1": ("c1", "id"), "m2": ("c2", "id")}
    rows = sql(
        wh, "SELECT message_id, type, event, user_id, product_id, occurred_at FROM event ORDER BY 1"
    )
    assert [(m, t, e, u, p, str(at)) for m, t, e, u, p, at in rows] == [
        ("m1", "track", "Product Viewed", "c1", "sku1", "2024-05-01 10:00:00"),
        ("m2", "track", "Product Viewed", "c2", None, "2024-05-01 08:01:00"),
    ]
    # The product named by the event joins the catalogue.
    assert sql(wh, "SELECT product_id, name FROM product") == [("sku1", "sku1")]
    # Nothing about the CRM customers was overwritten by the bare user ids.
    assert sql(wh, "SELECT customer_id, email FROM customer ORDER BY 1") == [
        ("c1", "known@shop.com"),
        ("c2", "other@shop.com"),
    ]


def test_anonymous_session_then_identify(project, sql) -> None:
    r = segment(
        project,
        "s.jsonl",
        [
            track("a1", "2024-05-01T10:00:00Z", anonymousId="anon-1"),
            {
                "type": "page",
                "messageId": "a2",
                "timestamp": "2024-05-01T10:01:00Z",
                "anonymousId": "anon-1",
            },
            identify(
                "a3",
                "2024-05-01T10:02:00Z",
                "u1",
                "anon-1",
                email="Ann@Example.COM",
                first_name="Ann",
            ),
            track("a4", "2024-05-01T10:03:00Z", userId="u1", anonymousId="anon-1"),
        ],
    )
    assert (r.read, r.loaded, r.rejected) == (4, 4, 0)
    assert r.tables["customer"].inserted == 1
    _, wh = project
    assert events(wh, sql) == {
        "a1": ("u1", "anonymous_id"),
        "a2": ("u1", "anonymous_id"),
        "a3": ("u1", "id"),
        "a4": ("u1", "id"),
    }
    # The raw ids are kept as sent.
    assert sql(wh, "SELECT user_id, anonymous_id FROM event WHERE message_id = 'a1'") == [
        (None, "anon-1")
    ]
    assert [(a, c, str(t)) for a, c, t in sql(wh, "SELECT * FROM identity")] == [
        ("anon-1", "u1", "2024-05-01 10:02:00")
    ]
    # identify traits create the customer, the email trimmed and lower-cased.
    assert sql(wh, "SELECT customer_id, email, first_name FROM customer") == [
        ("u1", "ann@example.com", "Ann")
    ]
    assert sql(wh, "SELECT email FROM event WHERE message_id = 'a3'") == [("ann@example.com",)]


def test_event_with_only_an_email_matches_by_email(crm, sql) -> None:
    segment(
        crm,
        "s.jsonl",
        [
            track(
                "e1",
                "2024-05-01T10:00:00Z",
                anonymousId="anon-9",
                properties={"email": " KNOWN@shop.com"},
            )
        ],
    )
    _, wh = crm
    assert events(wh, sql) == {"e1": ("c1", "email")}
    assert sql(wh, "SELECT email FROM event") == [("known@shop.com",)]


def test_customer_loaded_later_claims_an_email_event(project, sql) -> None:
    segment(
        project,
        "s.jsonl",
        [
            track(
                "e1",
                "2024-05-01T10:00:00Z",
                anonymousId="anon-9",
                properties={"email": "late@shop.com"},
            )
        ],
    )
    settings, wh = project
    assert events(wh, sql) == {"e1": (None, "unmatched")}
    path = settings.path("crm.csv")
    path.write_text("customer_id,email\nc9,late@shop.com\n", encoding="utf-8")
    ingest(wh, settings, path, table="customer")
    assert events(wh, sql) == {"e1": ("c9", "email")}


def test_unmatched_event_is_claimed_by_a_later_identify(crm, sql) -> None:
    segment(crm, "day1.jsonl", [track("x1", "2024-05-01T10:00:00Z", anonymousId="anon-7")])
    _, wh = crm
    assert events(wh, sql) == {"x1": (None, "unmatched")}
    assert sql(wh, "SELECT anonymous_id, user_id FROM event") == [("anon-7", None)]

    r = segment(crm, "day2.jsonl", [identify("x2", "2024-05-02T09:00:00Z", "c2", "anon-7")])
    assert (r.read, r.loaded, r.rejected) == (1, 1, 0)
    assert events(wh, sql) == {"x1": ("c2", "anonymous_id"), "x2": ("c2", "id")}
    assert sql(wh, "SELECT anonymous_id, customer_id FROM identity") == [("anon-7", "c2")]


def test_first_identify_of_an_anonymous_id_wins(project, sql) -> None:
    segment(
        project,
        "s.jsonl",
        [
            track("t1", "2024-05-01T10:00:00Z", anonymousId="shared"),
            identify("i2", "2024-05-01T12:00:00Z", "later", "shared"),
            identify("i1", "2024-05-01T11:00:00Z", "first", "shared"),
        ],
    )
    _, wh = project
    assert sql(wh, "SELECT anonymous_id, customer_id FROM identity") == [("shared", "first")]
    assert events(wh, sql)["t1"] == ("first", "anonymous_id")


def test_identify_updates_the_customer_latest_call_wins(crm, sql) -> None:
    segment(
        crm,
        "s.jsonl",
        [
            identify("i1", "2024-05-01T10:00:00Z", "c1", email="Old@Shop.com", firstName="Ann"),
            identify(
                "i2", "2024-05-02T10:00:00Z", "c1", email="NEW@shop.com", address={"country": "FR"}
            ),
        ],
    )
    _, wh = crm
    assert sql(wh, "SELECT email, first_name, country FROM customer WHERE customer_id = 'c1'") == [
        ("new@shop.com", "Ann", "FR")
    ]


def test_identify_without_traits_keeps_the_stored_email(crm, sql) -> None:
    # An identify call without traits must not erase what the CRM export gave (patch merge).
    segment(crm, "s.jsonl", [identify("i1", "2024-05-02T10:00:00Z", "c1", "anon-3")])
    _, wh = crm
    assert sql(wh, "SELECT email FROM customer WHERE customer_id = 'c1'") == [("known@shop.com",)]


def test_order_completed_creates_an_order_and_lines(crm, sql) -> None:
    r = segment(
        crm,
        "s.jsonl",
        [
            track(
                "o1",
                "2024-05-01T10:00:00+02:00",
                event="Order Completed",
                userId="c1",
                properties={
                    "order_id": "ord-1",
                    "currency": "eur",
                    "products": [
                        {"product_id": "sku1", "quantity": 2, "price": 9.5, "name": "Mug"},
                        {"sku": "sku2", "price": 3},
                    ],
                },
            )
        ],
    )
    assert (r.read, r.loaded, r.rejected) == (1, 1, 0)
    assert r.tables["order"].inserted == 1
    assert r.tables["order_line"].inserted == 2
    _, wh = crm
    orders = sql(wh, 'SELECT order_id, customer_id, ordered_at, status, currency FROM "order"')
    assert [(o, c, str(t), s, cur) for o, c, t, s, cur in orders] == [
        ("ord-1", "c1", "2024-05-01 08:00:00", "completed", "EUR")
    ]
    assert sql(
        wh, "SELECT line_number, product_id, quantity, unit_price FROM order_line ORDER BY 1"
    ) == [
        (1, "sku1", 2, 9.5),
        (2, "sku2", 1, 3.0),
    ]
    assert sql(wh, "SELECT product_id, name, price FROM product ORDER BY 1") == [
        ("sku1", "Mug", 9.5),
        ("sku2", "sku2", 3.0),
    ]
    assert events(wh, sql) == {"o1": ("c1", "id")}


def _day() -> list[dict]:
    return [
        track("r1", "2024-05-01T10:00:00Z", userId="c1"),
        track("r2", "2024-05-01T10:01:00Z", anonymousId="anon-r"),
        identify("r3", "2024-05-01T10:02:00Z", "c2", "anon-r", email="other@shop.com"),
        track("r4", "2024-05-01T10:03:00Z", anonymousId="nobody"),
        track(
            "r5",
            "2024-05-01T10:04:00Z",
            event="Order Completed",
            userId="c1",
            properties={
                "order_id": "ord-r",
                "products": [{"product_id": "sku1", "quantity": 1, "price": 2}],
            },
        ),
    ]


def _snapshot(wh, sql) -> dict[str, list]:
    tables = ["customer", "product", '"order"', "order_line", "event", "identity", "reject"]
    return {t: sorted(sql(wh, f"SELECT * FROM {t}"), key=repr) for t in tables}


def test_replaying_the_same_file_changes_nothing(crm, sql) -> None:
    settings, wh = crm
    path = jsonl(settings, "s.jsonl", _day())
    first = ingest(wh, settings, path, preset="segment")
    assert (first.read, first.loaded, first.rejected) == (5, 5, 0)
    before = _snapshot(wh, sql)
    again = ingest(wh, settings, path, preset="segment")
    assert again.already_loaded is True
    assert _snapshot(wh, sql) == before


def test_replayed_events_in_another_file_are_no_ops(crm, sql) -> None:
    # Resolved columns (customer_id, identity) are not compared: a replay is a no-op.
    _settings, wh = crm
    segment(crm, "day.jsonl", _day())
    before = _snapshot(wh, sql)
    # The next export repeats the five calls and adds one (so it is not the same file content).
    r = segment(crm, "overlap.jsonl", [*_day(), track("r6", "2024-05-01T11:00:00Z", userId="c2")])
    assert (r.read, r.loaded, r.rejected) == (6, 6, 0)
    assert r.rejects_by_rule == {}
    assert (r.tables["event"].inserted, r.tables["event"].unchanged) == (1, 5)
    after = _snapshot(wh, sql)
    assert after["event"] == sorted(
        [*before["event"], *sql(wh, "SELECT * FROM event WHERE message_id = 'r6'")], key=repr
    )
    assert {t: rows for t, rows in after.items() if t != "event"} == {
        t: rows for t, rows in before.items() if t != "event"
    }


def test_bad_segment_calls_are_rejected(project, sql) -> None:
    r = segment(
        project,
        "s.jsonl",
        [
            track("ok", "2024-05-01T10:00:00Z", anonymousId="a"),
            {"type": "track", "event": "X", "timestamp": "2024-05-01T10:00:00Z"},  # no messageId
            {"type": "bogus", "messageId": "al", "timestamp": "2024-05-01T10:00:00Z"},
            track("bad-ts", "whenever", anonymousId="a"),
            track("ok", "2024-05-01T10:00:00Z", anonymousId="a"),  # repeated messageId
        ],
    )
    assert (r.read, r.loaded, r.rejected) == (5, 1, 4)
    _, wh = project
    assert sql(wh, "SELECT line, rule FROM reject ORDER BY line") == [
        (2, "required"),
        (3, "allowed"),
        (4, "type"),
        (5, "duplicate_key"),
    ]
    reasons = dict(sql(wh, "SELECT line, reason FROM reject"))
    assert reasons[2] == "message_id is required but empty"
    assert reasons[3].startswith("type: bogus is not one of track, identify")
    assert reasons[4] == "occurred_at: whenever is not a valid date/time"
    assert reasons[5] == "repeats the row with message_id=ok, first seen on line 1"


def test_alias_links_its_previous_id_like_an_identify(project, sql) -> None:
    """An alias call's previousId claims the anonymous browsing before it, as an identify
    call's anonymousId does; the same rule for files and for live events (docs/adr/0097)."""
    alias = {
        "type": "alias",
        "messageId": "b2",
        "timestamp": "2024-05-01T10:02:00Z",
        "userId": "u9",
        "previousId": "anon-9",
    }
    r = segment(
        project,
        "s.jsonl",
        [
            track("b1", "2024-05-01T10:00:00Z", anonymousId="anon-9"),
            alias,
            identify("b3", "2024-05-01T10:03:00Z", "u9", email="nine@example.com"),
        ],
    )
    assert (r.read, r.loaded, r.rejected) == (3, 3, 0)
    _, wh = project
    assert events(wh, sql)["b1"] == ("u9", "anonymous_id")
    assert sql(wh, "SELECT anonymous_id, customer_id FROM identity") == [("anon-9", "u9")]


def test_identify_consent_trait_becomes_consent_changes(project, sql) -> None:
    """email_consent / emailConsent on identify: one consent row per change, an unknown value
    rejected with its reason."""
    r = segment(
        project,
        "s.jsonl",
        [
            identify("c1", "2024-05-01T10:00:00Z", "u1", email_consent=True),
            identify("c2", "2024-05-02T10:00:00Z", "u1", email_consent="granted"),
            identify("c3", "2024-05-03T10:00:00Z", "u1", emailConsent="false"),
            identify("c4", "2024-05-01T10:00:00Z", "u2", email_consent="maybe"),
            identify("c5", "2024-05-01T10:00:00Z", "u3", first_name="No consent trait"),
        ],
    )
    assert (r.read, r.loaded) == (5, 5)
    _, wh = project
    rows = sql(wh, "SELECT customer_id, status, source, recorded_at FROM consent ORDER BY 4")
    assert [(c, s, src, str(t)) for c, s, src, t in rows] == [
        ("u1", "granted", "identify", "2024-05-01 10:00:00"),
        ("u1", "withdrawn", "identify", "2024-05-03 10:00:00"),
    ]
    reasons = sql(wh, "SELECT target, reason FROM reject")
    assert len(reasons) == 1 and reasons[0][0] == "consent" and "maybe" in reasons[0][1]
