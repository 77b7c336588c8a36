"""The tracking writer never loses an acknowledged event: one event the store refuses costs
nothing to the others of its batch and lands in the quarantine with its reason; hostile webhook
events are validated one by one (never a 500). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from campaign_support import event_counts, seed_campaign
from keys_support import KEY
from sendwise.api import create_app
from sendwise.config import Settings
from sendwise.errors import StoreError
from sendwise.store import Store
from sendwise.store.records import event_rows
from sendwise.store.schema import email_event, message
from sendwise.tracking.events import engagement
from sendwise.tracking.quarantine import FILE, FOLDER, Quarantine, replay
from sendwise.tracking.recorder import EventRecorder, write_or_report
from sendwise.tracking.sendgrid import EVENT_TYPES
from tracking_support import running

HUMAN = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
NOW = int(time.time())


def _keys(store: Store, n: int) -> list[str]:
    seed_campaign(store, n)
    with store.begin() as conn:
        return [r[0] for r in conn.execute(select(message.c.message_key)).all()]


def _poison(i: int, key: str) -> dict[str, Any]:
    """An event no store can write, three ways (each fails on SQLite and on PostgreSQL)."""
    event = engagement("click", key, user_agent=HUMAN, ip="192.0.2.1", url="https://x.example/")
    if i % 3 == 0:
        event["url"] = {"an": "object"}  # the example
    elif i % 3 == 1:
        event["event_id"] = None  # NOT NULL
    else:
        event["user_agent"] = ["a", "list"]  # breaks the machine check before the insert
    return event


def test_one_poisoned_event_in_every_flush_batch_loses_no_other(store: Store, tmp_path) -> None:
    """Acceptance (defect 5): opens answered before their commit, as the service answers them,
    with one unwritable event in every batch: every open is stored, every poison quarantined."""
    keys = _keys(store, 30)
    quarantine = Quarantine(tmp_path / "q.jsonl")
    rounds, per_round = 40, 25

    async def run() -> int:
        rec = EventRecorder(store, flush_seconds=0.002, quarantine=quarantine)
        await rec.start()
        answered = 0
        for r in range(rounds):
            # no await suspends between these: they enter the queue, and so a batch, together
            await rec.record(_poison(r, keys[r % len(keys)]), wait=False)
            for i in range(per_round):
                event = engagement("open", keys[i % len(keys)], user_agent=HUMAN, ip="192.0.2.9")
                await rec.record(event, wait=False)
                answered += 1
            await asyncio.sleep(0.005)
        await rec.stop()
        assert rec.written == answered
        return answered

    answered = asyncio.run(run())
    assert event_counts(store)["open"] == answered == rounds * per_round
    assert event_counts(store)["click"] == 0
    entries = quarantine.entries()
    assert len(entries) == rounds
    assert all(e["kind"] == "write" and e["reason"] for e in entries)
    assert Counter(type(e["event"]["url"]).__name__ for e in entries)["dict"] == math.ceil(
        rounds / 3
    )


def test_a_waiting_request_learns_its_event_was_not_stored(store: Store, tmp_path) -> None:
    keys = _keys(store, 5)
    quarantine = Quarantine(tmp_path / "q.jsonl")

    async def run() -> list[Any]:
        rec = EventRecorder(store, flush_seconds=0.002, quarantine=quarantine)
        await rec.start()
        good = [engagement("open", k, user_agent=HUMAN, ip=None) for k in keys]
        got = await asyncio.gather(
            *(rec.record(e) for e in [*good[:2], _poison(0, keys[0]), *good[2:]]),
            return_exceptions=True,
        )
        await rec.stop()
        return got

    got = asyncio.run(run())
    assert [type(g).__name__ for g in got] == ["NoneType"] * 2 + ["StoreError"] + ["NoneType"] * 3
    assert isinstance(got[2], StoreError)
    assert event_counts(store)["open"] == 5 and len(quarantine.entries()) == 1


def test_replay_writes_what_can_be_written_and_keeps_the_rest(store: Store, tmp_path) -> None:
    keys = _keys(store, 4)
    quarantine = Quarantine(tmp_path / "q.jsonl")
    fine = [engagement("open", k, user_agent=HUMAN, ip=None) for k in keys]
    quarantine.add([(e, "store unavailable") for e in fine], kind="write")  # e.g. a DB outage
    quarantine.add([(_poison(0, keys[0]), "refused")], kind="write")
    quarantine.add(
        [({"event": "open", "timestamp": "yesterday"}, "event 0: timestamp")], kind="invalid"
    )
    report = replay(quarantine, lambda events: write_or_report(store, events))
    assert (report.stored, report.kept) == (4, 2)
    assert event_counts(store)["open"] == 4
    stored = {r["event_id"]: r["occurred_at"] for r in event_rows(store) if r["type"] == "open"}
    assert stored == {e["event_id"]: e["occurred_at"] for e in fine}
    assert sorted(e["kind"] for e in quarantine.entries()) == ["invalid", "write"]


# --- webhooks -----------------------------------------------------------------------------------


class Webhook:
    """A SendGrid signing key and the settings that trust it."""

    def __init__(self) -> None:
        self.private = ec.generate_private_key(ec.SECP256R1())
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.public = base64.b64encode(der).decode()

    def headers(self, body: bytes) -> dict[str, str]:
        ts = str(int(time.time()))
        sig = self.private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
            "content-type": "application/json",
        }

    def settings(self, project: Path) -> Settings:
        return Settings(
            project=project,
            delivery={"signing_key": KEY},
            tracking={"sendgrid_public_key": self.public},
        )


def _quarantined(project: Path) -> list[dict[str, Any]]:
    return Quarantine(project / FOLDER / FILE).entries()


def test_hostile_webhook_events_are_quarantined_with_index_and_field(store, tmp_path) -> None:
    keys = _keys(store, 3)
    hook = Webhook()
    good = {"event": "delivered", "timestamp": NOW, "sg_event_id": "good-1",
            "email": "a@b.example", "custom_args": {"message_key": keys[0]}}  # fmt: skip
    items = [
        {**good, "sg_event_id": "bad-0", "timestamp": "yesterday"},
        {**good, "sg_event_id": "bad-1", "timestamp": 1e20},
        {**good, "sg_event_id": "bad-2", "email": 12345},
        good,
        {**good, "sg_event_id": "bad-4", "event": "click", "url": {"href": "x"}},
        {**good, "sg_event_id": "bad-5", "custom_args": "message_key"},
        {**good, "sg_event_id": {"an": "object"}},
        "not an event",
        {**good, "event": "processed", "sg_event_id": "ignored"},
        {**good, "sg_event_id": "good-2", "event": "spamreport"},
    ]
    body = json.dumps(items).encode()
    with (
        running(create_app(hook.settings(tmp_path), store=store)) as url,
        httpx.Client(base_url=url) as http,
    ):
        r = http.post("/webhooks/sendgrid", content=body, headers=hook.headers(body))
    assert r.status_code == 200, r.text
    for named in ("event 0: timestamp", "event 1: timestamp", "event 2: email", "event 4: url"):
        assert named in r.text
    assert "2 recorded, 7 quarantined" in r.text
    stored = {
        row["event_id"] for row in event_rows(store) if row["event_id"].startswith("sendgrid:")
    }
    assert stored == {"sendgrid:good-1", "sendgrid:good-2"}
    reasons = [e["reason"] for e in _quarantined(tmp_path)]
    assert [r.split(":")[0] for r in reasons] == [f"event {i}" for i in (0, 1, 2, 4, 5, 6, 7)]
    assert all(e["kind"] == "invalid" for e in _quarantined(tmp_path))


FIELDS = ("event", "timestamp", "sg_event_id", "email", "custom_args", "message_key", "url",
          "useragent", "ip", "sg_machine_open", "type", "status", "reason", "response")  # fmt: skip
text = st.text(st.characters(codec="utf-8") | st.characters(categories=["Cs"]), max_size=12)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
clean = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)


@st.composite
def valid_event(draw, keys: list[str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "event": draw(st.sampled_from(sorted(EVENT_TYPES))),
        "timestamp": draw(st.integers(NOW - 86_400 * 30, NOW) | st.floats(NOW - 9e5, NOW)),
        "sg_event_id": uuid.uuid4().hex,
    }
    for name, values in (
        ("email", st.emails().filter(lambda e: len(e) <= 320)),
        ("custom_args", st.fixed_dictionaries({"message_key": st.sampled_from(keys)})),
        ("url", clean),
        ("useragent", clean),
        ("ip", st.ip_addresses().map(str)),
        ("sg_machine_open", st.booleans()),
        ("status", st.sampled_from(["5.1.1", "4.2.0"]) | st.floats(0, 9)),
        ("reason", clean),
    ):
        if draw(st.booleans()):
            item[name] = draw(values)
    return item


@st.composite
def random_event(draw) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # not even an object
    item = draw(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=len(FIELDS)))
    item["event"] = draw(st.sampled_from(sorted(EVENT_TYPES)) | json_values)
    if draw(st.integers(0, 9)) < 7:
        item["sg_event_id"] = uuid.uuid4().hex  # so that we can find it
    return item


def test_random_webhook_events_never_500_and_each_valid_one_is_stored_once(
    store: Store, tmp_path: Path
) -> None:
    """Hypothesis: bodies mixing valid events and random JSON in every field. Never a 500; a
    valid event acknowledged by a 2xx is stored exactly once (also when the ESP retries);
    every other event of a kind sendwise records is stored or quarantined, never dropped."""
    keys = _keys(store, 8)
    hook = Webhook()
    e = email_event.c

    def stored(ids: list[str]) -> Counter:
        with store.begin() as conn:
            rows = conn.execute(select(e.event_id).where(e.event_id.in_(ids))).all()
        return Counter(r[0] for r in rows)

    app = create_app(hook.settings(tmp_path), store=store)
    with running(app) as url, httpx.Client(base_url=url) as http:

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(
            items=st.lists(valid_event(keys) | random_event(), max_size=8).flatmap(
                lambda xs: st.permutations(xs)
            ),
            retry=st.booleans(),
        )
        def check(items: list[Any], retry: bool) -> None:
            body = json.dumps(items).encode()
            before = len(_quarantined(tmp_path))
            for _ in range(2 if retry else 1):
                r = http.post("/webhooks/sendgrid", content=body, headers=hook.headers(body))
                assert r.status_code == 200, r.text
            ids = [
                f"sendgrid:{i['sg_event_id']}"
                for i in items
                if isinstance(i, dict) and isinstance(i.get("sg_event_id"), str)
            ]
            found = stored(ids)
            assert all(n == 1 for n in found.values())  # never twice
            quarantined = Counter(
                f"sendgrid:{q['event'].get('sg_event_id')}"
                for q in _quarantined(tmp_path)[before:]
                if isinstance(q["event"], dict) and isinstance(q["event"].get("sg_event_id"), str)
            )
            for item in items:
                if not (isinstance(item, dict) and isinstance(item.get("sg_event_id"), str)):
                    continue
                ident = f"sendgrid:{item['sg_event_id']}"
                name = item.get("event")
                if isinstance(name, str) and name not in EVENT_TYPES:
                    assert found[ident] == 0 and quarantined[ident] == 0  # not ours: ignored
                elif _is_valid(item):
                    assert found[ident] == 1 and quarantined[ident] == 0, item
                else:
                    assert found[ident] + min(quarantined[ident], 1) == 1, item

        check()

        @settings(max_examples=30, deadline=None)
        @given(body=json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=40))
        def whole_bodies(body: bytes) -> None:
            r = http.post("/webhooks/sendgrid", content=body, headers=hook.headers(body))
            assert r.status_code in (200, 400), r.text

        whole_bodies()


def _is_valid(item: dict[str, Any]) -> bool:
    """Whether ``valid_event`` could have made ``item`` (the oracle of the property)."""
    return set(item) <= {"event", "timestamp", "sg_event_id", "email", "custom_args", "url",
                         "useragent", "ip", "sg_machine_open", "status", "reason"} and (
        isinstance(item.get("timestamp"), int | float)
        and not isinstance(item.get("timestamp"), bool)
        and NOW - 86_400 * 31 <= item["timestamp"] <= NOW
        and isinstance(item.get("custom_args", {}), dict)
        and all(
            isinstance(item.get(k, ""), str) and "\x00" not in item.get(k, "")
            for k in ("email", "url", "useragent", "ip", "reason")
        )
        and isinstance(item.get("sg_machine_open", False), bool)
        and (_plain_text(item.get("status", "")) or _number(item.get("status")))
        and all(_plain_text(item.get(k, "")) for k in ("email", "url", "useragent", "ip"))
        and (
            set(item.get("custom_args", {})) <= {"message_key"}
            and isinstance(item.get("custom_args", {}).get("message_key", ""), str)
        )
    )  # fmt: skip


def _plain_text(value: Any) -> bool:
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def test_cli_quarantine_list_and_replay(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from sendwise.cli.app import app as cli
    from sendwise.config import init_project, load_settings
    from sendwise.store import open_store

    init_project(tmp_path)
    with open_store(load_settings(tmp_path)) as store:
        keys = _keys(store, 3)
        events = [engagement("open", k, user_agent=HUMAN, ip=None) for k in keys]
    q = Quarantine.of_project(tmp_path)
    q.add([(e, "store unavailable (OperationalError: ...)") for e in events], kind="write")
    q.add([({"event": "open", "email": 5}, "event 0: email: expected text")], kind="invalid")
    runner = CliRunner()
    listed = runner.invoke(cli, ["quarantine", "list", "--project", str(tmp_path)])
    assert listed.exit_code == 0 and "4 quarantined" in listed.output, listed.output
    done = runner.invoke(cli, ["quarantine", "replay", "--project", str(tmp_path)])
    assert done.exit_code == 0 and "stored 3; 1 still in quarantine" in done.output, done.output
    with open_store(load_settings(tmp_path)) as store:
        assert event_counts(store)["open"] == 3
    assert [e["kind"] for e in q.entries()] == ["invalid"]
