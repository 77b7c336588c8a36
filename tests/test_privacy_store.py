"""The store's privacy repository on SQLite and PostgreSQL: the ledger keeps proof and derives
the state, one person's rows are found and erased in every table (other people's kept), the
tombstone list and the audit log."""

from __future__ import annotations

from datetime import datetime, timedelta

from campaign_support import seed_campaign
from sendwise.store import Store
from sendwise.store.records import consent_in_force

NOW = datetime(2024, 6, 1, 10)


def test_ledger_rows_carry_proof_and_the_latest_is_in_force(store: Store) -> None:
    proof = {
        "legal_basis": "consent",
        "ip": "203.0.113.9",
        "user_agent": "UA/1",
        "token": "ab" * 32,
    }
    assert store.consents.record("c1", "pending", email="A@x.org", source="signup", at=NOW,
                                 proof=proof)  # fmt: skip
    assert store.consents.record("c1", "granted", email="a@x.org", source="double_opt_in",
                                 at=NOW + timedelta(minutes=5), proof=proof)  # fmt: skip
    assert not store.consents.record("c1", "granted", email="a@x.org", source="again",
                                     at=NOW + timedelta(minutes=6))  # fmt: skip
    rows = store.privacy.rows_of(["c1"], [])["consent"]
    assert [r["status"] for r in sorted(rows, key=lambda r: r["id"])] == ["pending", "granted"]
    assert {r["ip"] for r in rows} == {"203.0.113.9"} and {r["email"] for r in rows} == {"a@x.org"}
    assert consent_in_force(store).to_dict() == {"c1": "granted"}


def test_erase_removes_exactly_their_rows_everywhere(store: Store) -> None:
    cid = seed_campaign(store, 6)
    store.consents.record("000001", "granted", email="c000001@example.com", source="s", at=NOW)
    store.consents.record("000002", "granted", email="c000002@example.com", source="s", at=NOW)
    store.suppressions.add("c000001@example.com", "manual", at=NOW)
    before = store.privacy.rows_of(["000001"], ["c000001@example.com"])
    assert set(before) >= {"message", "consent", "suppression"}
    counts, keys = store.privacy.erase(["000001"], ["c000001@example.com"])
    assert counts["message"] == 1 and counts["consent"] == 1 and counts["suppression"] == 1
    assert len(keys) == 1
    assert store.privacy.rows_of(["000001"], ["c000001@example.com"]) == {}
    plan = store.messages.plan_frame(cid)
    assert set(plan["customer_id"]) == {f"{i:06d}" for i in range(6)} - {"000001"}
    assert "000002" in store.privacy.rows_of(["000002"], [])["consent"][0]["customer_id"]
    store.privacy.compact()


def test_tombstones_and_audit(store: Store) -> None:
    assert store.privacy.add_tombstones([("h1", "email"), ("h2", "customer_id")], NOW) == 2
    assert store.privacy.add_tombstones([("h1", "email"), ("h3", "email")], NOW) == 1
    with store.begin() as conn:
        assert store.privacy.tombstoned(conn, ["h1", "h9", "h3"]) == {"h1", "h3"}
    store.privacy.audit("r1", "erase", 1, "cli", NOW, {"warehouse": {"customer": 1}})
    (row,) = store.privacy.audit_log()
    assert row["detail"] == {"warehouse": {"customer": 1}} and row["requested_by"] == "cli"
    store.privacy.set_frequency("c1", "weekly", NOW)
    store.privacy.set_frequency("c1", "monthly", NOW)
    assert (
        store.privacy.frequency_of("c1") == "monthly" and store.privacy.frequency_of("c2") == "any"
    )
