"""One contract suite for every repository of the operational store, run against the in-memory
fake, SQLite and PostgreSQL (skipped without SENDWISE_TEST_POSTGRES_URL): the fake the unit
tests use behaves as the databases do."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import sql_store
from sendwise.delivery.policy import SendPolicy
from sendwise.delivery.shards import Shard
from sendwise.store import MemoryStore
from sendwise.store.repositories import CampaignRecord, Repositories, SuppressionChange

T0 = datetime(2024, 6, 1, 10)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def repos(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    with sql_store(request.param, tmp_path) as st:
        yield st


def plan_rows(n: int, *, email: str = "c{}@example.com", **over: Any) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        row = dict(
            message_key=f"{i % 16:x}{i:023d}",
            customer_id=f"c{i}",
            email=email.format(i),
            variant="A",
            template="a",
            status="pending",
            reason=None,
            scheduled_at=T0,
            timezone=None,
        )
        row.update({k: (v(i) if callable(v) else v) for k, v in over.items()})
        rows.append(row)
    return rows


def planned(repos: Repositories, rows: list[dict[str, Any]], cid: str = "camp") -> str:
    record = CampaignRecord(campaign_id=cid, name=f"name-{cid}", status="created", definition={})
    assert repos.campaigns.save(record, T0) is None
    assert repos.messages.add_plan(cid, rows, T0)
    return cid


def statuses(repos: Repositories, cid: str) -> dict[str, str]:
    frame = repos.messages.plan_frame(cid)
    return dict(zip(frame["customer_id"], frame["status"], strict=True))


# ---- campaigns -------------------------------------------------------------------------


def test_campaigns_are_replaced_only_until_planned(repos: Repositories) -> None:
    rec = CampaignRecord(campaign_id="k1", name="Spring", status="created", definition={"a": 1})
    assert repos.campaigns.save(rec, T0) is None
    assert (
        repos.campaigns.save(
            CampaignRecord(campaign_id="k1", name="Spring", status="created", definition={"a": 2}),
            T0,
        )
        == "created"
    )
    assert repos.campaigns.get("Spring").definition == {"a": 2}
    assert repos.campaigns.get("k1").name == "Spring"
    assert repos.campaigns.get("nope") is None
    assert not repos.campaigns.set_status("k1", "sending", only_from="planned", at=T0)
    assert repos.campaigns.set_status("k1", "planned", only_from="created", at=T0)
    assert repos.campaigns.save(rec, T0) == "planned"
    assert repos.campaigns.get("k1").definition == {"a": 2}


# ---- messages --------------------------------------------------------------------------


def test_a_plan_is_written_once_with_its_skips(repos: Repositories) -> None:
    rows = plan_rows(5)
    rows[1].update(status="skipped", reason="no valid email address", scheduled_at=None)
    rows[2].update(status="holdout", variant="holdout", scheduled_at=None)
    cid = planned(repos, rows)
    assert not repos.messages.add_plan(cid, plan_rows(1), T0)  # planned already
    assert repos.campaigns.get(cid).status == "planned"
    frame = repos.messages.plan_frame(cid)
    assert len(frame) == 5 and repos.messages.count(cid) == 3
    assert repos.messages.count(cid, ["holdout", "skipped"]) == 2
    skipped = repos.events.rows(type="skipped")
    assert [(e["customer_id"], e["reason"]) for e in skipped] == [("c1", "no valid email address")]


def test_claim_takes_due_messages_only_and_commits_them_sending(repos: Repositories) -> None:
    rows = plan_rows(6, scheduled_at=lambda i: T0 + timedelta(hours=i))
    cid = planned(repos, rows)
    claim = repos.messages.claim_due(SendPolicy(), campaign_id=cid, now=T0 + timedelta(hours=2),
                                     limit=2, at=T0)  # fmt: skip
    assert len(claim.ready) == 2 and claim.claimed == 2
    claim2 = repos.messages.claim_due(SendPolicy(), campaign_id=cid, now=T0 + timedelta(hours=2),
                                      limit=10, at=T0)  # fmt: skip
    got = {m.customer_id for m in claim.ready} | {m.customer_id for m in claim2.ready}
    assert got == {"c0", "c1", "c2"}
    assert repos.messages.count(cid, ["sending"]) == 3
    # a crashed run's sending rows are claimed again (resume)
    again = repos.messages.claim_due(SendPolicy(), campaign_id=cid, now=T0 + timedelta(hours=2),
                                     limit=10, at=T0)  # fmt: skip
    assert {m.customer_id for m in again.ready} == got
    keys = [m.message_key for m in again.ready]
    assert {m.message_key for m in repos.messages.sending(cid, [*keys, "zz"])} == set(keys)
    repos.messages.record_outcomes(
        cid,
        [
            (m, "sent" if i else "failed", "" if i else "permanent: no")
            for i, m in enumerate(again.ready)
        ],
        T0,
    )
    st = statuses(repos, cid)
    assert sorted(st[c] for c in got) == ["failed", "sent", "sent"]
    assert len(repos.events.rows(type="send")) == 2 and len(repos.events.rows(type="failed")) == 1
    assert repos.messages.sending(cid, keys) == []
    found = repos.messages.find([*keys[:1], "unknown"])
    assert list(found) == keys[:1] and found[keys[0]].campaign_id == cid


def test_claim_by_shard(repos: Repositories) -> None:
    cid = planned(repos, plan_rows(64))
    for i in range(3):
        shard = Shard(i, 3)
        claim = repos.messages.claim_due(SendPolicy(), campaign_id=cid, now=T0, limit=100,
                                         shard=shard, at=T0)  # fmt: skip
        assert claim.ready and all(shard.owns(m.message_key) for m in claim.ready)
    assert repos.messages.count(cid, ["pending"]) == 0


def test_the_policy_decides_at_claim_and_skips_are_recorded(repos: Repositories) -> None:
    rows = plan_rows(8)
    rows[7].update(email="not an address")
    cid = planned(repos, rows)
    repos.suppressions.add(" C1@Example.com", "complaint", at=T0)
    repos.suppressions.add("c2@example.com", "hard_bounce", at=T0)
    repos.consents.record("c3", "withdrawn", email="c3@example.com", source="form", at=T0)
    # another customer record with the same address (any case) withdrew: consent is per address
    repos.consents.record("other", "withdrawn", email=" C4@EXAMPLE.com", source="x", at=T0)
    # withdrawn then granted again: the latest change is in force
    repos.consents.record("c5", "withdrawn", email="c5@example.com", source="x", at=T0)
    repos.consents.record("c5", "granted", email="c5@example.com", source="x",
                          at=T0 + timedelta(minutes=1))  # fmt: skip
    repos.consents.record("c6", "withdrawn", source="support ticket", at=T0)  # no address
    claim = repos.messages.claim_due(SendPolicy(), campaign_id=cid, now=T0, limit=100, at=T0)
    reasons = {m.customer_id: why for m, why in claim.skipped}
    assert reasons == {
        "c1": "suppressed: complaint",
        "c2": "suppressed: hard_bounce",
        "c3": "consent withdrawn",
        "c4": "consent withdrawn",
        "c6": "consent withdrawn",
        "c7": "no valid email address",
    }
    assert {m.customer_id for m in claim.ready} == {"c0", "c5"}
    st = statuses(repos, cid)
    assert st["c1"] == "skipped" and st["c0"] == "sending"
    frame = repos.messages.plan_frame(cid).set_index("customer_id")
    assert frame.loc["c3", "reason"] == "consent withdrawn"
    events = {e["customer_id"]: e["reason"] for e in repos.events.rows(type="skipped")}
    assert events == reasons


def test_opt_in_cap_quiet_hours_and_holdout(repos: Repositories) -> None:
    rows = plan_rows(5, timezone="Europe/Paris")
    rows[4].update(variant="holdout")
    cid = planned(repos, rows)
    for i in range(4):
        repos.consents.record(f"c{i}", "granted", email=f"c{i}@example.com", source="f", at=T0)
    repos.events.add([
        dict(event_id=f"s{i}", customer_id="x", email="C1@example.com", type="send",
             occurred_at=T0 - timedelta(days=i))
        for i in range(3)
    ])  # fmt: skip
    policy = SendPolicy(consent="opt_in", frequency_cap=3, cap_days=7, quiet_start=21, quiet_end=8)
    night = datetime(2024, 6, 1, 21, 30)  # 23:30 in Paris
    claim = repos.messages.claim_due(policy, campaign_id=cid, now=night, limit=10, at=night)
    assert {m.customer_id: w for m, w in claim.skipped} == {
        "c1": "frequency cap: 3 emails in 7 days"
    }
    assert [m.customer_id for m in claim.held_out] == ["c4"]
    assert sorted(m.customer_id for m, _ in claim.deferred) == ["c0", "c2", "c3"]
    assert {t for _, t in claim.deferred} == {datetime(2024, 6, 2, 6)}  # 08:00 in Paris
    assert not claim.ready
    frame = repos.messages.plan_frame(cid).set_index("customer_id")
    assert frame.loc["c0", "status"] == "pending" and frame.loc["c4", "status"] == "holdout"
    assert frame.loc["c0", "scheduled_at"] == datetime(2024, 6, 2, 6)
    morning = datetime(2024, 6, 2, 6)
    later = repos.messages.claim_due(policy, campaign_id=cid, now=morning, limit=10, at=morning)
    assert sorted(m.customer_id for m in later.ready) == ["c0", "c2", "c3"]
    repos.consents.record("x9", "granted", email="c9@example.com", source="f", at=T0)
    assert repos.messages.count(cid, ["pending"]) == 0


# ---- events, consents, suppressions ----------------------------------------------------


def test_events_are_deduplicated_and_read_back_in_order(repos: Repositories) -> None:
    row = dict(event_id="e1", customer_id="a", type="send", occurred_at=T0, campaign_id="k",
               message_id="m1")  # fmt: skip
    repos.events.add([row, {**row, "event_id": "e2", "type": "open"}])
    repos.events.add([row, {**row, "event_id": "e3", "customer_id": "b",
                            "occurred_at": T0 - timedelta(days=9)}])  # fmt: skip
    assert [e["event_id"] for e in repos.events.rows()] == ["e1", "e2", "e3"]
    first = repos.events.since(0, 2)
    assert list(first["event_id"]) == ["e1", "e2"]
    rest = repos.events.since(int(first["seq"].max()), 10)
    assert list(rest["event_id"]) == ["e3"]
    assert repos.events.sends_by_customer(T0 - timedelta(days=7)) == {"a": 1}
    frame = repos.events.for_campaign("k", ["open", "send"])
    assert sorted(frame["type"]) == ["open", "send", "send"]


def test_repeating_a_consent_change_adds_nothing_and_import_is_idempotent(
    repos: Repositories,
) -> None:
    assert repos.consents.record("a", "withdrawn", email="A@x.com", source="link", at=T0)
    assert not repos.consents.record("a", "withdrawn", email="a@x.com ", source="link",
                                     at=T0 + timedelta(seconds=5))  # fmt: skip
    assert not repos.consents.record("b", "withdrawn", email="a@x.com", source="link",
                                     at=T0 + timedelta(seconds=9))  # fmt: skip
    assert repos.consents.record("a", "granted", email="a@x.com", source="form",
                                 at=T0 + timedelta(days=1))  # fmt: skip
    frame = pd.DataFrame({
        "customer_id": ["c", "c"], "email": ["C@x.com", "C@x.com"], "channel": ["email"] * 2,
        "purpose": ["marketing"] * 2, "status": ["granted", "withdrawn"], "source": [None, "s"],
        "recorded_at": pd.to_datetime(["2024-01-01", "2024-02-01"], utc=True),
    })  # fmt: skip
    assert repos.consents.import_changes(frame) == 2
    assert repos.consents.import_changes(frame) == 0
    changes = repos.consents.changes()
    assert len(changes) == 4 and set(changes["email"]) == {"a@x.com", "c@x.com"}
    with pytest.raises(ValueError, match="status"):
        repos.consents.record("a", "maybe", source="x", at=T0)


def test_suppressions_are_global_and_case_insensitive(repos: Repositories) -> None:
    assert repos.suppressions.add("Ann@Example.COM ", "hard_bounce", customer_id="c1", at=T0)
    assert not repos.suppressions.add("ann@example.com", "complaint", at=T0)
    assert repos.suppressions.reasons() == {"ann@example.com": "hard_bounce"}
    assert repos.suppressions.reasons(["ANN@example.com", "b@x.com"]) == {
        "ann@example.com": "hard_bounce"
    }
    with pytest.raises(ValueError, match="reason"):
        repos.suppressions.add("b@example.com", "bored", at=T0)


def test_the_tracking_batch_is_written_with_its_suppressions_and_withdrawals(
    repos: Repositories,
) -> None:
    cid = planned(repos, plan_rows(3))
    keys = list(repos.messages.plan_frame(cid)["message_key"])
    info = repos.messages.find([keys[0], "unknown"])
    assert list(info) == [keys[0]] and info[keys[0]].email == "c0@example.com"
    seen: list[dict] = []
    at = T0 + timedelta(hours=1)
    events = [
        dict(event_id="u1", customer_id="c0", email="C0@example.com", message_id=keys[0],
             campaign_id=cid, type="unsubscribe", occurred_at=at),
        dict(event_id="b1", customer_id="c1", email="c1@example.com", type="bounce",
             occurred_at=at, reason="550"),
        dict(event_id="o1", customer_id="c2", type="open", occurred_at=at, is_machine=True),
    ]  # fmt: skip
    changes = [
        SuppressionChange("C0@example.com", "unsubscribe", "unsubscribe", "c0", at),
        SuppressionChange("c1@example.com", "hard_bounce", "bounce", "c1", at),
        SuppressionChange("c0@example.com ", "unsubscribe", "unsubscribe", "c0", at),  # again
    ]

    def build(known):
        seen.append(dict(known))
        return events, changes

    repos.events.record_batch([keys[0], "unknown", keys[0]], build)
    assert list(seen[0]) == [keys[0]] and seen[0][keys[0]].customer_id == "c0"
    repos.events.record_batch([], lambda known: (events, changes))  # replayed: adds nothing
    assert [e["event_id"] for e in repos.events.rows()] == ["u1", "b1", "o1"]
    assert repos.events.rows(event_id="o1")[0]["is_machine"]
    assert repos.suppressions.reasons() == {
        "c0@example.com": "unsubscribe",
        "c1@example.com": "hard_bounce",
    }
    consent = repos.consents.changes()
    assert consent[["customer_id", "email", "status"]].values.tolist() == [
        ["c0", "c0@example.com", "withdrawn"]
    ]
    bad = dict(event_id="o2", type="open", occurred_at=at)
    with pytest.raises(ValueError, match="reason"):
        repos.events.record_batch(
            [], lambda known: ([bad], [SuppressionChange("x@y.com", "bored", "x", None, at)])
        )

    def broken(known):
        raise ValueError("the writer's own check failed")

    with pytest.raises(ValueError, match="own check"):
        repos.events.record_batch(keys, broken)
    assert not repos.events.rows(event_id="o2")  # nothing of a failed batch is written
    assert repos.ping()


def test_a_change_after_the_claim_withholds_the_message_at_recheck(repos: Repositories) -> None:
    cid = planned(repos, plan_rows(6))
    claim = repos.messages.claim_due(SendPolicy(), campaign_id=cid, now=T0, limit=10, at=T0)
    assert len(claim.ready) == 6
    later = T0 + timedelta(seconds=1)
    repos.suppressions.add("C1@example.com", "unsubscribe", at=later)
    repos.consents.record("someone", "withdrawn", email="c2@example.com", source="f", at=later)
    by_id = {m.customer_id: m for m in claim.ready}
    part = [by_id[c] for c in ("c0", "c1", "c2", "c3")]
    withheld = repos.messages.recheck(SendPolicy(), campaign_id=cid, batch=part, now=T0, at=later)
    assert {m.customer_id: why for m, why in withheld} == {
        "c1": "suppressed: unsubscribe",
        "c2": "consent withdrawn",
    }
    st = statuses(repos, cid)
    assert (st["c1"], st["c2"], st["c0"], st["c5"]) == ("skipped", "skipped", "sending", "sending")
    skipped = {e["customer_id"]: e["reason"] for e in repos.events.rows(type="skipped")}
    assert skipped == {"c1": "suppressed: unsubscribe", "c2": "consent withdrawn"}
    # the cap is the claim's: a recheck never counts sends again
    capped = SendPolicy(frequency_cap=1)
    assert repos.messages.recheck(capped, campaign_id=cid, batch=[by_id["c3"]], now=T0,
                                  at=later) == []  # fmt: skip
    assert repos.messages.recheck(SendPolicy(), campaign_id=cid, batch=[], now=T0, at=later) == []


def test_the_cap_counts_messages_claimed_by_other_campaigns(repos: Repositories) -> None:
    """Two campaigns to the same addresses: what one claimed and has not recorded yet counts
    toward the other's cap; a batch's own messages to one address count too."""
    first = planned(repos, plan_rows(4), "one")
    rows = plan_rows(4, email=" C{}@Example.com", customer_id=lambda i: f"d{i}",
                     message_key=lambda i: f"{i % 16:x}{i:022d}x")  # fmt: skip
    second = planned(repos, rows, "two")
    cap = SendPolicy(frequency_cap=1, cap_days=7)
    a = repos.messages.claim_due(cap, campaign_id=first, now=T0, limit=2, at=T0)
    assert len(a.ready) == 2
    b = repos.messages.claim_due(cap, campaign_id=second, now=T0, limit=10, at=T0)
    taken = {m.address for m in a.ready}
    assert {m.address for m, _ in b.skipped} == taken
    assert {m.address for m in b.ready} == {f"c{i}@example.com" for i in range(4)} - taken
    assert all(why == "frequency cap: 1 emails in 7 days" for _, why in b.skipped)
    # recorded failed: no longer in flight, and no send: the address may be sent again
    repos.messages.record_outcomes(first, [(m, "failed", "permanent: x") for m in a.ready], T0)
    c = repos.messages.claim_due(cap, campaign_id=first, now=T0, limit=10, at=T0)
    assert {m.address for m, _ in c.skipped} == {m.address for m in b.ready}
    # two records with one address in the same batch: only the first goes
    dup = planned(repos, plan_rows(2, email="same@example.com", customer_id=lambda i: f"e{i}",
                                   message_key=lambda i: f"{i:x}{i:022d}y"), "dup")  # fmt: skip
    d = repos.messages.claim_due(SendPolicy(frequency_cap=1), campaign_id=dup, now=T0, limit=5,
                                 at=T0)  # fmt: skip
    assert len(d.ready) == 1 and len(d.skipped) == 1


# ---- privacy facts (erased people, topics, frequency) -----------------------------------


def test_privacy_facts_skip_the_same_messages_in_every_store(repos: Any) -> None:
    from sendwise.privacy.hashing import person_hashes

    key = b"k" * 32
    cid = planned(repos, plan_rows(6))
    for i in range(6):
        repos.consents.record(f"c{i}", "granted", email=f"c{i}@example.com", source="f", at=T0)
    # c0 erased by customer id, c1 by address only
    assert repos.privacy.add_tombstones(
        [(person_hashes(key, "c0", None)[0], "customer_id"),
         (person_hashes(key, None, "C1@example.com")[0], "email")], T0,
    ) == 2  # fmt: skip
    again = [(person_hashes(key, "c0", None)[0], "customer_id")]
    assert repos.privacy.add_tombstones(again, T0) == 0
    # c2 unticked the topic, c3 ticked it
    repos.consents.record("c2", "withdrawn", email="c2@example.com", purpose="topic:offers",
                          source="preferences", at=T0)  # fmt: skip
    repos.consents.record("c3", "granted", email="c3@example.com", purpose="topic:offers",
                          source="preferences", at=T0)  # fmt: skip
    # c4 wants one a week and had one 3 days ago; c5 one a month and had one 40 days ago
    repos.privacy.set_frequency("c4", "weekly", T0)
    repos.privacy.set_frequency("c5", "monthly", T0)
    with pytest.raises(Exception, match="frequency must be one of"):
        repos.privacy.set_frequency("c5", "hourly", T0)
    assert repos.privacy.frequency_of("c4") == "weekly" and repos.privacy.frequency_of("x") == "any"
    repos.events.add([
        dict(event_id="w4", customer_id="c4", email="c4@example.com", type="send",
             occurred_at=T0 - timedelta(days=3)),
        dict(event_id="m5", customer_id="c5", email="c5@example.com", type="send",
             occurred_at=T0 - timedelta(days=40)),
    ])  # fmt: skip
    policy = SendPolicy(consent="opt_in", topic="offers", tombstone_key=key)
    claim = repos.messages.claim_due(policy, campaign_id=cid, now=T0, limit=10, at=T0)
    assert {m.customer_id: w for m, w in claim.skipped} == {
        "c0": "erased (privacy request)",
        "c1": "erased (privacy request)",
        "c2": "declined the topic offers",
        "c4": "preference: at most one email a week",
    }
    assert sorted(m.customer_id for m in claim.ready) == ["c3", "c5"]
    # without the key nobody is found on the list; the topic and frequency still hold
    other = planned(repos, plan_rows(3, message_key=lambda i: f"f{i:023d}"), "camp2")
    for i in range(3):
        repos.consents.record(f"c{i}", "granted", email=f"c{i}@example.com", source="f", at=T0)
    loose = repos.messages.claim_due(SendPolicy(consent="opt_in", topic="offers"),
                                     campaign_id=other, now=T0, limit=10, at=T0)  # fmt: skip
    assert {m.customer_id: w for m, w in loose.skipped} == {"c2": "declined the topic offers"}
    # the recheck before sending finds a person erased after the claim
    repos.privacy.add_tombstones([(person_hashes(key, "c3", None)[0], "customer_id")], T0)
    withheld = repos.messages.recheck(policy, campaign_id=cid, batch=claim.ready, now=T0, at=T0)
    assert [(m.customer_id, w) for m, w in withheld] == [("c3", "erased (privacy request)")]
    repos.privacy.audit("r1", "erase", 1, "cli", T0, {"store": {"x": 1}})
    (entry,) = repos.privacy.audit_log()[:1]
    assert entry["request_id"] == "r1" and entry["subjects"] == 1
