"""SQLAlchemy repositories for campaigns and messages, with the claim of due messages."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import (
    Connection,
    DateTime,
    Integer,
    String,
    and_,
    any_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from sendwise.store.claims import (
    Claim,
    Claimed,
    ClaimPolicy,
    ConsentChange,
    Facts,
    KeyPart,
    consent_by_message,
    skipped_event,
    split,
    utcnow,
)
from sendwise.store.repositories import DUE, PLAN_FIELDS, CampaignRecord, MessageInfo
from sendwise.store.schema import campaign as campaign_table
from sendwise.store.schema import consent as consent_table
from sendwise.store.schema import message as message_table
from sendwise.store.schema import suppression as suppression_table
from sendwise.store.sending_runs import SendingRuns
from sendwise.store.sql_records import chunks

if TYPE_CHECKING:
    from sendwise.store.connection import Store

m = message_table.c
CLAIMED = (m.message_key, m.customer_id, m.email, m.variant, m.template, m.timezone)
CAP_LOCK = 0x53574341  # "SWCA": PostgreSQL advisory lock key that serializes capped claims


def _recheck_query(sqlite: bool) -> Any:
    """One statement for the recheck before hand-off: the suppressions of the addresses and
    the consent changes that concern them (by address, or by customer when addressless), built
    once per dialect so that each part costs one cached execution. The lists travel as one
    value (a JSON array read with ``json_each`` on SQLite, an array on PostgreSQL), not one
    bound parameter per address."""
    s, c = suppression_table.c, consent_table.c

    def among(col: Any, name: str) -> Any:
        if sqlite:
            values = func.json_each(bindparam(name, type_=String)).table_valued("value")
            return col.in_(select(values.c.value))
        return col == any_(bindparam(name, type_=ARRAY(String)))

    none = (
        literal(None, String).label("customer_id"),
        literal(None, DateTime).label("recorded_at"),
        literal(None, Integer).label("id"),
    )
    suppressed = select(literal("s").label("kind"), s.email, s.reason.label("status"), *none)
    who = or_(among(c.email, "a"), and_(c.email.is_(None), among(c.customer_id, "ids")))
    changes = select(literal("c"), c.email, c.status, c.customer_id, c.recorded_at, c.id).where(
        who, c.channel == bindparam("channel"), c.purpose == bindparam("purpose")
    )
    return union_all(suppressed.where(among(s.email, "a")), changes)


RECHECK = {True: _recheck_query(True), False: _recheck_query(False)}


class SqlCampaigns:
    def __init__(self, store: Store) -> None:
        self.store = store

    def save(self, record: CampaignRecord, at: datetime) -> str | None:
        c = campaign_table.c
        row = dict(
            campaign_id=record.campaign_id,
            name=record.name,
            definition=record.definition,
            status=record.status,
            created_at=at,
        )
        with self.store.begin() as conn:
            existing = conn.execute(
                select(c.status).where(c.campaign_id == record.campaign_id)
            ).scalar()
            if existing is not None and existing != "created":
                return str(existing)
            if existing is not None:
                conn.execute(campaign_table.delete().where(c.campaign_id == record.campaign_id))
            conn.execute(insert(campaign_table), row)
        return None if existing is None else str(existing)

    def get(self, name_or_id: str) -> CampaignRecord | None:
        c = campaign_table.c
        with self.store.begin() as conn:
            row = conn.execute(
                select(c.campaign_id, c.name, c.status, c.definition)
                .where((c.name == name_or_id) | (c.campaign_id == name_or_id))
                .order_by((c.campaign_id == name_or_id).desc())
            ).first()
        return None if row is None else CampaignRecord(*row)

    def set_status(
        self, campaign_id: str, status: str, *, only_from: str | None = None, at: datetime
    ) -> bool:
        c = campaign_table.c
        stmt = update(campaign_table).where(c.campaign_id == campaign_id)
        if only_from is not None:
            stmt = stmt.where(c.status == only_from)
        values: dict[str, Any] = {"status": status}
        if status == "planned":
            values["planned_at"] = at
        if status == "done":
            values["finished_at"] = at
        with self.store.begin() as conn:
            return bool(conn.execute(stmt.values(**values)).rowcount)


def _claimed(row: Any) -> Claimed:
    return Claimed(*row)


class SqlMessages:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.runs = SendingRuns(store)

    def sending_run(self, campaign_id: str) -> AbstractContextManager[bool]:
        return self.runs.run(campaign_id)

    def add_plan(self, campaign_id: str, rows: Sequence[Mapping[str, Any]], at: datetime) -> bool:
        data = [
            {**{f: r.get(f) for f in PLAN_FIELDS}, "campaign_id": campaign_id,
             "attempts": 0, "updated_at": at}
            for r in rows
        ]  # fmt: skip
        skipped = [
            skipped_event(_claimed([r[f] for f in ("message_key", "customer_id", "email",
                                                   "variant", "template", "timezone")]),
                          campaign_id, str(r["reason"] or ""), at)
            for r in data
            if r["status"] == "skipped"
        ]  # fmt: skip
        c = campaign_table.c
        with self.store.begin() as conn:
            moved = conn.execute(
                update(campaign_table)
                .where(c.campaign_id == campaign_id, c.status == "created")
                .values(status="planned", planned_at=at)
            ).rowcount
            if moved != 1:
                return False
            for part in chunks(data, 10_000):
                conn.execute(insert(message_table), list(part))
            self.store.events.insert(conn, skipped)
        return True

    def assign_wave(
        self,
        campaign_id: str,
        placeholder: str,
        variants: Mapping[str, str],
        templates: Mapping[str, str | None],
        at: datetime,
    ) -> bool:
        if not variants:
            return False
        by_variant: dict[str, list[str]] = {}
        for key, variant in variants.items():
            by_variant.setdefault(variant, []).append(key)
        mine = (m.campaign_id == campaign_id) & (m.variant == placeholder)
        with self.store.begin() as conn:
            # the smallest key first: a concurrent run waits on that row, then finds it taken
            first = min(variants)
            if not conn.execute(
                update(message_table).where(mine, m.message_key == first).values(updated_at=at)
            ).rowcount:
                return False
            status = case((m.status == "waiting", "pending"), else_=m.status)
            for variant, keys in by_variant.items():
                for part in chunks(sorted(keys)):
                    conn.execute(
                        update(message_table)
                        .where(mine, m.message_key.in_(part))
                        .values(variant=variant, template=templates.get(variant), status=status,
                                updated_at=at)
                    )  # fmt: skip
        return True

    def add_messages(
        self, campaign_id: str, rows: Sequence[Mapping[str, Any]], at: datetime
    ) -> int:
        data = [
            {**{f: r.get(f) for f in PLAN_FIELDS}, "campaign_id": campaign_id,
             "attempts": 0, "updated_at": at}
            for r in rows
        ]  # fmt: skip
        if not data:
            return 0
        stmt = self.store.insert_ignore(message_table).returning(m.message_key)
        n = 0
        with self.store.begin() as conn:
            for part in chunks(data, 2000):
                n += len(conn.execute(stmt, list(part)).all())
        return n

    def _facts(
        self,
        conn: Connection,
        policy: ClaimPolicy,
        batch: Sequence[Claimed],
        now: datetime,
        *,
        cap: bool = True,
    ) -> Facts:
        store = self.store
        facts = Facts(suppressed=store.suppressions.lookup(conn, [m.address or "" for m in batch]))
        changes = store.consents.for_batch(conn, batch, policy.channel, policy.purpose)
        facts.consent = consent_by_message(batch, changes)
        since = policy.cap_since(now) if cap else None
        if since is not None:
            # in flight first: a message recorded sent between the two reads is counted twice
            # (a rare, safe error), never missed
            flying = self._in_flight(conn, batch)
            facts.recent_sends = store.events.recent_sends(conn, batch, since)
            for address, n in flying.items():
                facts.recent_sends[address] = facts.recent_sends.get(address, 0) + n
        store.privacy.fill_facts(conn, policy, batch, now, facts)
        return facts

    def _in_flight(self, conn: Connection, batch: Sequence[Claimed]) -> dict[str, int]:
        """Messages of other batches (any campaign) claimed and not yet recorded, by address:
        every message of ``batch`` is ``sending`` already, so they are counted and taken off."""
        address = func.lower(func.trim(m.email))
        own: dict[str, int] = {}
        for msg in batch:
            if msg.address:
                own[msg.address] = own.get(msg.address, 0) + 1
        out: dict[str, int] = {}
        for part in chunks(sorted(own)):
            query = (
                select(address, func.count())
                .where(address.in_(part), m.status == "sending")
                .group_by(address)
            )
            for a, n in conn.execute(query).all():
                others = int(n) - own.get(str(a), 0)
                if others > 0:
                    out[str(a)] = others
        return out

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
        # inside a sending run only pending rows: a sending one is another sender's in flight
        statuses = ("pending",) if self.runs.active(campaign_id) else DUE
        due = (
            select(m.message_key)
            .where(m.campaign_id == campaign_id, m.status.in_(statuses))
            .where(or_(m.scheduled_at.is_(None), m.scheduled_at <= now))
        )
        if shard is not None:
            due = due.where(func.substr(m.message_key, 1, 1).in_(shard.digits))
        due = due.limit(limit)
        if not self.store.is_sqlite:
            # rows another sender is claiming are passed over, not waited for and claimed
            # again; the status is checked again on the row as it is when locked. A CTE, run
            # once: as an IN subquery the planner may run it again and exceed the limit
            locked = due.with_for_update(skip_locked=True).cte("due")
            due = select(locked.c.message_key)
        stmt = (
            update(message_table)
            .where(m.message_key.in_(due), m.status.in_(statuses))
            .values(status="sending", attempts=m.attempts + 1, updated_at=at)
            .returning(*CLAIMED)
        )
        with self.store.begin() as conn:
            if policy.cap_since(now) is not None and not self.store.is_sqlite:
                # capped claims one at a time, so each counts the others' claimed messages
                # (on SQLite the UPDATE below takes the database's write lock: serial already)
                conn.execute(select(func.pg_advisory_xact_lock(CAP_LOCK)))
            batch = [_claimed(r) for r in conn.execute(stmt)]
            if not batch:
                return Claim()
            claim = split(batch, policy.decide(batch, self._facts(conn, policy, batch, now), now))
            self._keep_back(conn, campaign_id, claim, at)
        return claim

    def _keep_back(self, conn: Connection, campaign_id: str, claim: Claim, at: datetime) -> None:
        """Write what the policy decided for the messages not handed over."""
        back = (
            update(message_table)
            .where(m.message_key == bindparam("k"))
            .values(
                status=bindparam("s"),
                reason=bindparam("r"),
                scheduled_at=bindparam("t"),
                attempts=m.attempts - 1,
                updated_at=at,
            )
        )
        rows: list[dict[str, Any]] = [
            {"k": x.message_key, "s": "skipped", "r": why, "t": None}
                for x, why in claim.skipped]  # fmt: skip
        rows += [{"k": x.message_key, "s": "pending", "r": None, "t": until}
                 for x, until in claim.deferred]  # fmt: skip
        rows += [{"k": x.message_key, "s": "holdout", "r": None, "t": None}
                 for x in claim.held_out]  # fmt: skip
        if rows:
            conn.execute(back, rows)
        events = [skipped_event(x, campaign_id, why, at) for x, why in claim.skipped]
        self.store.events.insert(conn, events)

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
        with self.store.begin() as conn:
            decisions: list[Any] = []
            for part in chunks(list(batch)):
                facts = self._recheck_facts(conn, policy, part)
                decisions += policy.decide(part, facts, now)
            withheld = [
                (msg, d.reason or "skipped")
                for msg, d in zip(batch, decisions, strict=True)
                if d.verdict == "skip"
            ]
            if withheld:
                back = (
                    update(message_table)
                    .where(m.message_key == bindparam("k"), m.status == "sending")
                    .values(status="skipped", reason=bindparam("r"), attempts=m.attempts - 1,
                            updated_at=at)
                )  # fmt: skip
                conn.execute(back, [{"k": x.message_key, "r": why} for x, why in withheld])
                self.store.events.insert(
                    conn, [skipped_event(x, campaign_id, why, at) for x, why in withheld]
                )
        return withheld

    def _recheck_facts(
        self, conn: Connection, policy: ClaimPolicy, batch: Sequence[Claimed]
    ) -> Facts:
        """Suppressions and consents of the batch's addresses (no cap) in one query."""
        addresses = sorted({m.address for m in batch if m.address})
        facts = Facts()
        changes: list[ConsentChange] = []
        ids = sorted({m.customer_id for m in batch})
        sqlite = self.store.is_sqlite
        params = dict(a=json.dumps(addresses) if sqlite else addresses,
                      ids=json.dumps(ids) if sqlite else ids,
                      channel=policy.channel, purpose=policy.purpose)  # fmt: skip
        for kind, email, status, customer_id, recorded_at, id_ in conn.execute(
            RECHECK[sqlite], params
        ):
            if kind == "s":
                facts.suppressed[email] = status
            else:
                changes.append(ConsentChange(customer_id, email, status, recorded_at, id_))
        facts.consent = consent_by_message(batch, changes)
        facts.erased = self.store.privacy.erased_keys(conn, policy, batch)
        return facts

    def record_outcomes(
        self, campaign_id: str, outcomes: Sequence[tuple[Claimed, str, str]], at: datetime
    ) -> None:
        stmt = (
            update(message_table)
            .where(m.message_key == bindparam("k"))
            .values(status=bindparam("s"), reason=bindparam("r"), updated_at=at)
        )
        updates: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for msg, status, reason in outcomes:
            updates.append({"k": msg.message_key, "s": status, "r": reason or None})
            kind = "send" if status == "sent" else "failed"
            events.append(
                dict(
                    event_id=f"{msg.message_key}:{kind}",
                    customer_id=msg.customer_id,
                    email=msg.email,
                    message_id=msg.message_key,
                    campaign_id=campaign_id,
                    variant=msg.variant,
                    type=kind,
                    occurred_at=at,
                    reason=reason or None,
                )
            )
        if not updates:
            return
        with self.store.begin() as conn:
            conn.execute(stmt, updates)
            self.store.events.insert(conn, events)

    def sending(self, campaign_id: str, keys: Sequence[str]) -> list[Claimed]:
        out: list[Claimed] = []
        with self.store.begin() as conn:
            for part in chunks(list(keys)):
                query = select(*CLAIMED).where(
                    m.campaign_id == campaign_id, m.status == "sending", m.message_key.in_(part)
                )
                out += [_claimed(r) for r in conn.execute(query).all()]
        return out

    def count(self, campaign_id: str, statuses: Iterable[str] = DUE) -> int:
        query = select(func.count()).where(
            m.campaign_id == campaign_id, m.status.in_(list(statuses))
        )
        with self.store.begin() as conn:
            return int(conn.execute(query).scalar_one())

    def plan_frame(self, campaign_id: str) -> pd.DataFrame:
        cols = [getattr(m, f) for f in PLAN_FIELDS]
        with self.store.begin() as conn:
            rows = conn.execute(select(*cols).where(m.campaign_id == campaign_id)).all()
        return pd.DataFrame(rows, columns=list(PLAN_FIELDS))

    def find(self, keys: Iterable[str]) -> dict[str, MessageInfo]:
        with self.store.begin() as conn:
            return self.lookup(conn, keys)

    def lookup(self, conn: Connection, keys: Iterable[str]) -> dict[str, MessageInfo]:
        """``find`` in an open transaction."""
        cols = (m.message_key, m.customer_id, m.email, m.campaign_id, m.variant, m.status,
                m.updated_at)  # fmt: skip
        found: dict[str, MessageInfo] = {}
        for part in chunks(sorted(set(keys))):
            query = select(*cols).where(m.message_key.in_(part))
            found.update({r.message_key: MessageInfo(*r) for r in conn.execute(query)})
        return found
