"""The in-memory fake of the operational store: the same repositories over dicts and lists,
for unit tests that run in milliseconds. The contract suite (tests/test_store_contract.py) runs
the same tests on it as on SQLite and PostgreSQL; it is not thread- or process-safe."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime
from typing import Any

import pandas as pd

from sendwise.store.claims import (
    Claim,
    Claimed,
    ClaimPolicy,
    ConsentChange,
    Facts,
    KeyPart,
    consent_by_message,
    normalize_email,
    skipped_event,
    split,
    utcnow,
)
from sendwise.store.console import MemoryAudit, MemoryUsers
from sendwise.store.memory_journeys import MemoryJourneys
from sendwise.store.memory_privacy import MemoryPrivacy
from sendwise.store.memory_serving import MemoryApiKeys, MemoryIntake, MemoryWatermarks
from sendwise.store.memory_snapshots import MemorySnapshots
from sendwise.store.memory_webhooks import MemoryWebhooks
from sendwise.store.repositories import (
    DUE,
    EVENT_FIELDS,
    PLAN_FIELDS,
    BuildBatch,
    CampaignRecord,
    MessageInfo,
)
from sendwise.store.sql_records import check_consent, check_suppression, consent_records


class MemoryCampaigns:
    def __init__(self, db: MemoryStore) -> None:
        self.db = db
        self.rows: dict[str, dict[str, Any]] = {}

    def save(self, record: CampaignRecord, at: datetime) -> str | None:
        old = self.rows.get(record.campaign_id)
        if old is not None and old["record"].status != "created":
            return str(old["record"].status)
        self.rows[record.campaign_id] = {"record": record, "created_at": at}
        return None if old is None else "created"

    def get(self, name_or_id: str) -> CampaignRecord | None:
        if name_or_id in self.rows:
            return self.rows[name_or_id]["record"]
        found = [r["record"] for r in self.rows.values() if r["record"].name == name_or_id]
        return found[0] if found else None

    def set_status(
        self, campaign_id: str, status: str, *, only_from: str | None = None, at: datetime
    ) -> bool:
        row = self.rows.get(campaign_id)
        if row is None or (only_from is not None and row["record"].status != only_from):
            return False
        row["record"] = replace(row["record"], status=status)
        return True


def _claimed(row: Mapping[str, Any]) -> Claimed:
    return Claimed(
        row["message_key"],
        row["customer_id"],
        row["email"],
        row["variant"],
        row["template"],
        row.get("timezone"),
    )


class MemoryMessages:
    def __init__(self, db: MemoryStore) -> None:
        self.db = db
        self.rows: dict[str, dict[str, Any]] = {}

    def sending_run(self, campaign_id: str) -> AbstractContextManager[bool]:
        return nullcontext(True)  # one process: nothing to share

    def add_plan(self, campaign_id: str, rows: Sequence[Mapping[str, Any]], at: datetime) -> bool:
        if not self.db.campaigns.set_status(campaign_id, "planned", only_from="created", at=at):
            return False
        seen = {(r["campaign_id"], r["customer_id"]) for r in self.rows.values()}
        data = []
        for r in rows:
            row: dict[str, Any] = {f: r.get(f) for f in PLAN_FIELDS}
            row.update(campaign_id=campaign_id, attempts=0, updated_at=at)
            if row["message_key"] in self.rows or (campaign_id, row["customer_id"]) in seen:
                raise ValueError(f"message {row['message_key']} is stored already")
            seen.add((campaign_id, row["customer_id"]))
            data.append(row)
        for row in data:
            self.rows[row["message_key"]] = row
        self.db.events.add(
            [skipped_event(_claimed(r), campaign_id, str(r["reason"] or ""), at)
             for r in data if r["status"] == "skipped"]
        )  # fmt: skip
        return True

    def assign_wave(
        self,
        campaign_id: str,
        placeholder: str,
        variants: Mapping[str, str],
        templates: Mapping[str, str | None],
        at: datetime,
    ) -> bool:
        rows = [self.rows[k] for k in variants if k in self.rows]
        rows = [r for r in rows if r["campaign_id"] == campaign_id
                and r["variant"] == placeholder]  # fmt: skip
        for r in rows:
            r.update(variant=variants[r["message_key"]], updated_at=at)
            r["template"] = templates.get(r["variant"])
            if r["status"] == "waiting":
                r["status"] = "pending"
        return bool(rows)

    def _facts(
        self, policy: ClaimPolicy, batch: Sequence[Claimed], now: datetime, *, cap: bool = True
    ) -> Facts:
        db = self.db
        facts = Facts(suppressed=db.suppressions.reasons([m.address or "" for m in batch]))
        facts.consent = consent_by_message(batch, db.consents.all(policy.channel, policy.purpose))
        if cap:  # a claim reads every privacy fact; a recheck (SQL's RECHECK) erasure only
            db.privacy.fill_facts(None, policy, batch, now, facts)
        else:
            facts.erased = db.privacy.erased_keys(None, policy, batch)
        since = policy.cap_since(now) if cap else None
        if since is not None:
            addresses = {m.address for m in batch if m.address}
            mine = {m.message_key for m in batch}
            counts = facts.recent_sends
            for e in db.events.stored:
                address = normalize_email(e.get("email"))
                if e["type"] == "send" and e["occurred_at"] >= since and address in addresses:
                    counts[address] = counts.get(address, 0) + 1
            for r in self.rows.values():  # claimed by another batch, not yet recorded
                if r["status"] != "sending" or r["message_key"] in mine:
                    continue
                address = normalize_email(r["email"])
                if address in addresses:
                    counts[address] = counts.get(address, 0) + 1
        return facts

    def add_messages(
        self, campaign_id: str, rows: Sequence[Mapping[str, Any]], at: datetime
    ) -> int:
        n = 0
        for r in rows:
            if r["message_key"] in self.rows:
                continue
            row: dict[str, Any] = {f: r.get(f) for f in PLAN_FIELDS}
            row.update(campaign_id=campaign_id, attempts=0, updated_at=at)
            self.rows[row["message_key"]] = row
            n += 1
        return n

    def claim_due(
        self,
        policy: ClaimPolicy,
        *,
        campaign_id: str,
        now: datetime,
        limit: int,
        shard: KeyPart | None = None,
        at: datetime | None = None,
    ) -> Claim:
        at = at or utcnow()
        due = [
            r for r in self.rows.values()
            if r["campaign_id"] == campaign_id and r["status"] in DUE
            and (r["scheduled_at"] is None or r["scheduled_at"] <= now)
            and (shard is None or shard.owns(r["message_key"]))
        ][:limit]  # fmt: skip
        if not due:
            return Claim()
        batch = [_claimed(r) for r in due]
        claim = split(batch, policy.decide(batch, self._facts(policy, batch, now), now))
        for r in due:
            r.update(status="sending", attempts=r["attempts"] + 1, updated_at=at)
        for msg, why in claim.skipped:
            self._back(msg, at, status="skipped", reason=why, scheduled_at=None)
        for msg, until in claim.deferred:
            self._back(msg, at, status="pending", reason=None, scheduled_at=until)
        for msg in claim.held_out:
            self._back(msg, at, status="holdout", reason=None, scheduled_at=None)
        self.db.events.add([skipped_event(x, campaign_id, why, at) for x, why in claim.skipped])
        return claim

    def recheck(
        self,
        policy: ClaimPolicy,
        *,
        campaign_id: str,
        batch: Sequence[Claimed],
        now: datetime,
        at: datetime,
    ) -> list[tuple[Claimed, str]]:
        if not batch:
            return []
        decisions = policy.decide(batch, self._facts(policy, batch, now, cap=False), now)
        withheld = [
            (msg, d.reason or "skipped")
            for msg, d in zip(batch, decisions, strict=True)
            if d.verdict == "skip" and self.rows[msg.message_key]["status"] == "sending"
        ]
        for msg, why in withheld:
            self._back(msg, at, status="skipped", reason=why)
        self.db.events.add([skipped_event(x, campaign_id, why, at) for x, why in withheld])
        return withheld

    def _back(self, msg: Claimed, at: datetime, **values: Any) -> None:
        row = self.rows[msg.message_key]
        row.update(values, attempts=row["attempts"] - 1, updated_at=at)

    def record_outcomes(
        self, campaign_id: str, outcomes: Sequence[tuple[Claimed, str, str]], at: datetime
    ) -> None:
        events = []
        for msg, status, reason in outcomes:
            self.rows[msg.message_key].update(status=status, reason=reason or None, updated_at=at)
            kind = "send" if status == "sent" else "failed"
            events.append(
                dict(event_id=f"{msg.message_key}:{kind}", customer_id=msg.customer_id,
                     email=msg.email, message_id=msg.message_key, campaign_id=campaign_id,
                     variant=msg.variant, type=kind, occurred_at=at, reason=reason or None)
            )  # fmt: skip
        self.db.events.add(events)

    def sending(self, campaign_id: str, keys: Sequence[str]) -> list[Claimed]:
        rows = (self.rows.get(k) for k in dict.fromkeys(keys))
        return [
            _claimed(r) for r in rows
            if r is not None and r["campaign_id"] == campaign_id and r["status"] == "sending"
        ]  # fmt: skip

    def count(self, campaign_id: str, statuses: Iterable[str] = DUE) -> int:
        wanted = set(statuses)
        return sum(
            r["campaign_id"] == campaign_id and r["status"] in wanted for r in self.rows.values()
        )

    def plan_frame(self, campaign_id: str) -> pd.DataFrame:
        rows = [
            {f: r[f] for f in PLAN_FIELDS}
            for r in self.rows.values()
            if r["campaign_id"] == campaign_id
        ]
        return pd.DataFrame(rows, columns=list(PLAN_FIELDS))

    def find(self, keys: Iterable[str]) -> dict[str, MessageInfo]:
        cols = ("message_key", "customer_id", "email", "campaign_id", "variant", "status",
                "updated_at")  # fmt: skip
        return {
            k: MessageInfo(*(self.rows[k][c] for c in cols)) for k in set(keys) if k in self.rows
        }


class MemoryEvents:
    def __init__(self, db: MemoryStore) -> None:
        self.db = db
        self.stored: list[dict[str, Any]] = []
        self._ids: set[str] = set()
        self._seq = itertools.count(1)

    def add(self, events: Sequence[Mapping[str, Any]]) -> None:
        for e in events:
            if e["event_id"] in self._ids:
                continue
            self._ids.add(e["event_id"])
            row = {**dict.fromkeys(EVENT_FIELDS), "is_machine": False, **e}
            self.stored.append({"seq": next(self._seq), **row})

    def record_batch(self, keys: Sequence[str], build: BuildBatch) -> None:
        events, suppressions = build(self.db.messages.find(keys))
        for change in suppressions:
            check_suppression(change.reason)
        self.add(events)
        db = self.db
        for change in suppressions:
            db.suppressions.add(change.email, change.reason, source=change.source,
                                customer_id=change.customer_id, at=change.at)  # fmt: skip
            if change.reason == "unsubscribe" and change.customer_id:
                db.consents.record(change.customer_id, "withdrawn", email=change.email,
                                   source="unsubscribe_link", at=change.at)  # fmt: skip

    def rows(self, **equal: Any) -> list[dict[str, Any]]:
        return [dict(e) for e in self.stored if all(e.get(k) == v for k, v in equal.items())]

    def since(self, seq: int, limit: int) -> pd.DataFrame:
        rows = [e for e in self.stored if e["seq"] > seq][:limit]
        return pd.DataFrame(rows, columns=["seq", *EVENT_FIELDS])

    def sends_by_customer(self, since: datetime) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.stored:
            if e["type"] == "send" and e["occurred_at"] >= since and e["customer_id"] is not None:
                out[e["customer_id"]] = out.get(e["customer_id"], 0) + 1
        return out

    def for_campaign(self, campaign_id: str, types: Iterable[str]) -> pd.DataFrame:
        cols = ["message_id", "type", "occurred_at", "is_machine", "url"]
        wanted = set(types)
        rows = [
            {c: e[c] for c in cols}
            for e in self.stored
            if e["campaign_id"] == campaign_id and e["type"] in wanted
        ]
        frame = pd.DataFrame(rows, columns=cols)
        frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
        frame["is_machine"] = frame["is_machine"].astype(bool)
        return frame


class MemoryConsents:
    def __init__(self, db: MemoryStore) -> None:
        self.db = db
        self.stored: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def _add(self, row: dict[str, Any]) -> bool:
        key = ("customer_id", "channel", "purpose", "recorded_at")
        if any(all(s[k] == row[k] for k in key) for s in self.stored):
            return False
        self.stored.append({**row, "id": next(self._ids)})
        return True

    def all(self, channel: str, purpose: str) -> list[ConsentChange]:
        return [
            ConsentChange(s["customer_id"], s["email"], s["status"], s["recorded_at"], s["id"])
            for s in self.stored
            if s["channel"] == channel and s["purpose"] == purpose
        ]

    def in_force(
        self,
        customer_id: str,
        email: str | None,
        channel: str = "email",
        purpose: str = "marketing",
    ) -> str | None:
        address = normalize_email(email)
        mine = [
            c for c in self.all(channel, purpose)
            if (c.email == address if address else c.email is None and c.customer_id == customer_id)
        ]  # fmt: skip
        return max(mine, key=lambda c: (c.recorded_at, c.id)).status if mine else None

    def in_force_many(
        self, customer_ids: Sequence[str], channel: str = "email", purpose: str = "marketing"
    ) -> dict[str, str]:
        found = {c: self.in_force(c, None, channel, purpose) for c in dict.fromkeys(customer_ids)}
        return {c: status for c, status in found.items() if status is not None}

    def record(
        self,
        customer_id: str,
        status: str,
        *,
        email: str | None = None,
        channel: str = "email",
        purpose: str = "marketing",
        source: str,
        at: datetime,
        proof: Mapping[str, str | None] | None = None,
    ) -> bool:
        check_consent(status)
        address = normalize_email(email)
        mine = [
            c for c in self.all(channel, purpose)
            if (c.email == address if address else c.email is None and c.customer_id == customer_id)
        ]  # fmt: skip
        if mine and max(mine, key=lambda c: (c.recorded_at, c.id)).status == status:
            return False
        return self._add(
            dict(customer_id=customer_id, email=address, channel=channel, purpose=purpose,
                 status=status, source=source, recorded_at=at, **dict(proof or {}))
        )  # fmt: skip

    def import_changes(self, frame: pd.DataFrame) -> int:
        return sum(self._add(r) for r in consent_records(frame))

    def changes(self, channel: str = "email", purpose: str = "marketing") -> pd.DataFrame:
        rows = [(c.customer_id, c.email, c.status, c.recorded_at, c.id)
                for c in self.all(channel, purpose)]  # fmt: skip
        return pd.DataFrame(rows, columns=["customer_id", "email", "status", "recorded_at", "id"])


class MemorySuppressions:
    def __init__(self, db: MemoryStore) -> None:
        self.db = db
        self.stored: dict[str, dict[str, Any]] = {}

    def add(
        self,
        email: str,
        reason: str,
        *,
        source: str = "",
        customer_id: str | None = None,
        at: datetime,
    ) -> bool:
        check_suppression(reason)
        address = normalize_email(email) or ""
        if address in self.stored:
            return False
        self.stored[address] = dict(reason=reason, source=source, customer_id=customer_id,
                                    created_at=at)  # fmt: skip
        return True

    def reasons(self, emails: Iterable[str] | None = None) -> dict[str, str]:
        if emails is None:
            return {e: s["reason"] for e, s in self.stored.items()}
        wanted = {a for a in map(normalize_email, emails) if a}
        return {e: self.stored[e]["reason"] for e in wanted if e in self.stored}


class MemoryStore:
    """Every repository of the operational store, in memory (see the module doc)."""

    safe_url = "memory://"

    def __init__(self) -> None:
        self.campaigns = MemoryCampaigns(self)
        self.messages = MemoryMessages(self)
        self.events = MemoryEvents(self)
        self.consents = MemoryConsents(self)
        self.suppressions = MemorySuppressions(self)
        self.api_keys = MemoryApiKeys()
        self.intake = MemoryIntake()
        self.watermarks = MemoryWatermarks()
        self.snapshots = MemorySnapshots()
        self.users = MemoryUsers()
        self.audit = MemoryAudit()
        self.webhooks = MemoryWebhooks(lambda: len(self.events.stored))
        self.journeys = MemoryJourneys()
        self.privacy = MemoryPrivacy(self)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> MemoryStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
