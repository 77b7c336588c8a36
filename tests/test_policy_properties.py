"""Random interleavings of consent changes, suppressions, unsubscribes, plans, the passing of
time and sends (a hypothesis state machine), on the in-memory store and on SQLite; changes also
land while a batch is being handed over (after its claim), and the parts the pipeline rechecks
are of random sizes:

- every message handed over was rechecked after its claim, and nobody whose address was
  suppressed, or whose consent was withdrawn, when it was last rechecked is ever handed it;
  a recheck withholds exactly those (checked against the model at that moment);
- every planned message ends ``sent`` or ``skipped`` with a reason exactly once (one event),
  and no message is handed over twice;
- the frequency cap (2 emails a day per address, across campaigns and customer records) is
  never exceeded in any window.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from campaign_support import GreetingRenderer
from keys_support import KEY
from sendwise.campaigns.definition import parse_definition
from sendwise.campaigns.planning import Exclusions, plan
from sendwise.campaigns.service import record_plan
from sendwise.config import CampaignSettings, DeliverySettings
from sendwise.delivery import pipeline
from sendwise.delivery.messenger import SENT, Outcome
from sendwise.delivery.mime import OutgoingMessage
from sendwise.delivery.pipeline import deliver
from sendwise.delivery.policy import SendPolicy
from sendwise.store import MemoryStore, Store
from sendwise.store.claims import normalize_email
from sendwise.store.records import record_consent, suppress
from sendwise.store.repositories import CampaignRecord

T0 = datetime(2024, 6, 1, 10)
CAP = SendPolicy(frequency_cap=2, cap_days=1)
PEOPLE = 6
ADDRESS = [f"p{i}@example.com" for i in range(PEOPLE)]
spelling = st.sampled_from([str.lower, str.upper, lambda a: f"  {a.capitalize()} "])
person = st.integers(0, PEOPLE - 1)


class Checking:
    """A messenger that checks the model at the moment a message is handed over, and applies
    the changes drawn to land while the batch is in flight."""

    name = "checking"
    concurrency = 1
    idempotent = True

    def __init__(self, machine: PolicyMachine) -> None:
        self.machine = machine

    async def __aenter__(self) -> Checking:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def send(self, message: OutgoingMessage) -> Outcome:
        m = self.machine
        assert message.key in m.cleared, f"{message.key} handed over without a recheck"
        m.cleared.discard(message.key)
        m.handed[message.key] += 1
        if m.during:
            m.apply(*m.during.pop(0))
        return SENT


class Watched:
    """The store, with each recheck checked against the model at that moment."""

    def __init__(self, store: MemoryStore | Store, machine: PolicyMachine) -> None:
        self.store, self.machine = store, machine
        self.messages = WatchedMessages(store.messages, machine)

    def __getattr__(self, name: str):
        return getattr(self.store, name)


class WatchedMessages:
    def __init__(self, messages, machine: PolicyMachine) -> None:
        self.inner, self.machine = messages, machine

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def recheck(self, policy, *, campaign_id, batch, now, at):
        withheld = {m.message_key for m, _ in self.inner.recheck(
            policy, campaign_id=campaign_id, batch=batch, now=now, at=at)}  # fmt: skip
        for msg in batch:
            blocked = self.machine.blocked(msg.address or "")
            assert blocked == (msg.message_key in withheld), (msg.address, blocked)
            if not blocked:
                self.machine.cleared.add(msg.message_key)
        return [(m, "x") for m in batch if m.message_key in withheld]


class PolicyMachine(RuleBasedStateMachine):
    backend = "memory"

    def __init__(self) -> None:
        super().__init__()
        self.folder: Path | None = None
        if self.backend == "memory":
            self.store = MemoryStore()
        else:
            self.folder = Path(tempfile.mkdtemp(prefix="sw-policy-"))
            self.store = Store(f"sqlite:///{self.folder / 'store.sqlite'}")
        self.now = T0
        self.tick = 0
        self.suppressed: set[str] = set()
        self.consent: dict[str, str] = {}
        self.campaigns: list[str] = []
        self.planned: dict[str, str] = {}  # message key -> campaign
        self.handed: Counter[str] = Counter()
        self.cleared: set[str] = set()  # rechecked and allowed, not yet handed over
        self.during: list[tuple[int, str]] = []  # changes that land while a batch is sent

    def blocked(self, address: str) -> bool:
        return address in self.suppressed or self.consent.get(address) == "withdrawn"

    def apply(self, who: int, kind: str) -> None:
        """A change landing mid-send: what the tracking service or a form writes."""
        if kind == "unsubscribe":
            self.one_click_unsubscribe(who, str.upper)
        elif kind == "complaint":
            self.suppress_address(who, "complaint", str.lower)
        else:
            self.change_consent(who, kind, 1, str.lower)

    def _at(self) -> datetime:
        self.tick += 1
        return self.now + timedelta(microseconds=self.tick)

    @precondition(lambda self: len(self.campaigns) < 3)
    @rule(offsets=st.lists(st.integers(0, 180), min_size=PEOPLE, max_size=PEOPLE),
          cases=st.lists(spelling, min_size=PEOPLE, max_size=PEOPLE))  # fmt: skip
    def plan_campaign(self, offsets: list[int], cases: list) -> None:
        """A campaign planned now, each message due 0-3 hours later; planning is told nothing
        (every exclusion is left to the claim)."""
        n = len(self.campaigns)
        defn = parse_definition(
            {"name": f"c{n}", "audience": {"rule": "true"}, "holdout": 20,
             "variants": [{"name": "A", "template": "a"}]}
        )  # fmt: skip
        ids = [f"c{n}-r{i}" for i in range(PEOPLE)]  # each campaign: other customer records
        audience = pd.DataFrame(
            {"customer_id": ids, "email": [f(a) for f, a in zip(cases, ADDRESS, strict=True)]}
        )
        blind = Exclusions(pd.Series("granted", index=ids), pd.Series(dtype=str),
                           pd.Series(dtype="int64"))  # fmt: skip
        frame = plan(defn, audience, blind, CampaignSettings(quiet_start=None), self.now)
        frame["scheduled_at"] = [self.now + timedelta(minutes=o) for o in offsets]
        frame.loc[frame["status"] != "pending", "scheduled_at"] = None
        rec = CampaignRecord(defn.campaign_id, defn.name, "created", {})
        self.store.campaigns.save(rec, self.now)
        assert record_plan(self.store, defn.campaign_id, frame, self.now)
        self.campaigns.append(defn.campaign_id)
        for key, status in zip(frame["message_key"], frame["status"], strict=True):
            if status == "pending":
                self.planned[key] = defn.campaign_id

    @rule(who=person, reason=st.sampled_from(["hard_bounce", "complaint", "manual"]), f=spelling)
    def suppress_address(self, who: int, reason: str, f) -> None:
        suppress(self.store, f(ADDRESS[who]), reason, at=self._at())
        self.suppressed.add(ADDRESS[who])

    @rule(who=person, status=st.sampled_from(["withdrawn", "granted"]), record=st.integers(0, 3),
          f=spelling)  # fmt: skip
    def change_consent(self, who: int, status: str, record: int, f) -> None:
        """By any customer record that has the address (consent is the address owner's)."""
        record_consent(self.store, f"c{record}-r{who}", status, email=f(ADDRESS[who]),
                       source="form", at=self._at())  # fmt: skip
        self.consent[ADDRESS[who]] = status

    @rule(who=person, f=spelling)
    def one_click_unsubscribe(self, who: int, f) -> None:
        """What the tracking service writes for a one-click POST."""
        suppress(self.store, f(ADDRESS[who]), "unsubscribe", at=self._at())
        record_consent(self.store, f"x-r{who}", "withdrawn", email=f(ADDRESS[who]),
                       source="unsubscribe_link", at=self._at())  # fmt: skip
        self.suppressed.add(ADDRESS[who])
        self.consent[ADDRESS[who]] = "withdrawn"

    @rule(minutes=st.integers(0, 120))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(batch=st.integers(1, 8), part=st.integers(1, 4),
          during=st.lists(st.tuples(person, st.sampled_from(
              ["unsubscribe", "complaint", "withdrawn", "granted"])), max_size=4))  # fmt: skip
    def send_due(self, batch: int, part: int = 50, during: list | None = None) -> None:
        self.during = list(during or [])
        saved, pipeline.RECHECK_EVERY = pipeline.RECHECK_EVERY, part
        try:
            for cid in self.campaigns:
                deliver(Watched(self.store, self), cid, GreetingRenderer(), Checking(self),
                        DeliverySettings(batch_size=batch, signing_key=KEY), now=self.now,
                        policy=CAP)  # fmt: skip
        finally:
            pipeline.RECHECK_EVERY = saved
            self.during = []

    @invariant()
    def nothing_handed_twice(self) -> None:
        assert all(n == 1 for n in self.handed.values())

    def teardown(self) -> None:
        try:
            self.now += timedelta(days=1)
            self.send_due(5)
            events = Counter(
                (e["message_id"], e["type"]) for e in self.store.events.rows()
                if e["type"] in ("send", "skipped")
            )  # fmt: skip
            for cid in self.campaigns:
                frame = self.store.messages.plan_frame(cid).set_index("message_key")
                for key, row in frame.iterrows():
                    if key not in self.planned:
                        continue
                    assert row["status"] in ("sent", "skipped"), (key, row["status"])
                    kind = "send" if row["status"] == "sent" else "skipped"
                    assert (
                        events[(key, kind)] == 1
                        and sum(events[(key, k)] for k in ("send", "skipped")) == 1
                    )
                    assert (row["status"] == "sent") == (self.handed[key] == 1)
                    if row["status"] == "skipped":
                        assert row["reason"]
            sent: dict[str, list[datetime]] = {}
            for e in self.store.events.rows(type="send"):
                sent.setdefault(normalize_email(e["email"]) or "", []).append(e["occurred_at"])
            window = timedelta(days=CAP.cap_days)
            for times in sent.values():
                for t in times:
                    assert sum(t - window <= u <= t for u in times) <= 2, sorted(times)
        finally:
            if self.folder is not None:
                self.store.close()
                shutil.rmtree(self.folder, ignore_errors=True)


class SqlitePolicyMachine(PolicyMachine):
    backend = "sqlite"


TestPolicyOnTheFake = PolicyMachine.TestCase
TestPolicyOnTheFake.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
TestPolicyOnSqlite = SqlitePolicyMachine.TestCase
TestPolicyOnSqlite.settings = settings(max_examples=25, stateful_step_count=25, deadline=None)
