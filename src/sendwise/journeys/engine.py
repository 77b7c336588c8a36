"""The journey engine: triggers in, due steps run, messages handed to the send pipeline.

:class:`JourneyEngine` is driven by a worker (:mod:`sendwise.journeys.worker`), a test or the
simulator, each with its own clock:

- :meth:`~JourneyEngine.poll_events` reads the intake log after the ``journeys`` watermark
  and calls :meth:`~JourneyEngine.on_events`: trigger events enter customers (re-entry rule,
  holdout drawn at entry), goal events end their open states (a conversion within the goal
  window), awaited events wake ``wait_for`` steps. The watermark moves after the page is
  applied; a page read twice changes nothing (entries are keyed by the event).
- :meth:`~JourneyEngine.on_changes` does the same for publish's segment and score changes;
  :meth:`~JourneyEngine.poll_dates` for date attributes, once a day.
- :meth:`~JourneyEngine.run_due` claims due states under a lease and runs them to their next
  wait (:func:`sendwise.journeys.steps.advance`); a send inserts a ``pending`` message row.
- :meth:`~JourneyEngine.deliver_due` runs :func:`sendwise.delivery.pipeline.deliver` for each
  journey with messages due, so consent, suppression, the caps shared with campaigns and quiet
  hours are checked when each message is claimed and again just before it is handed over.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sendwise.delivery.policy import SendPolicy
from sendwise.journeys.definition import JourneyDefinition, parse_journey
from sendwise.journeys.facts import FactSource
from sendwise.journeys.steps import Effects, advance, digest, fraction
from sendwise.journeys.triggers import Entering, Plan, change_entries, event_time, goal_value
from sendwise.journeys.triggers import matches as trigger_matches
from sendwise.privacy.tombstones import policy_key
from sendwise.store.journeys import JourneyState
from sendwise.store.records import utcnow

logger = logging.getLogger(__name__)
WATERMARK = "journeys"
LEASE = timedelta(seconds=60)


@dataclass
class JourneyStatus:
    """Customers per step and status, waiting, exited by reason (``sendwise journey status``)."""

    name: str
    version: int
    status: str
    entered: int = 0
    holdout: int = 0
    waiting: int = 0
    running: int = 0
    done: int = 0
    exited: dict[str, int] = field(default_factory=dict)
    at_step: dict[str, int] = field(default_factory=dict)
    """Open (waiting or running) customers by the step they are at."""
    messages: dict[str, int] = field(default_factory=dict)
    """The journey's messages by status (pending, sent, skipped ...)."""


class JourneyEngine:
    def __init__(
        self,
        store: Any,
        settings: Any,
        serving: Any = None,
        clock: Callable[[], datetime] = utcnow,
        *,
        owner: str | None = None,
    ) -> None:
        if serving is None:
            from sendwise.serving.service import Serving

            serving = Serving(store, settings, clock=clock)
        self.store, self.settings, self.serving, self.clock = store, settings, serving, clock
        self.owner = owner or f"w-{uuid.uuid4().hex[:12]}"
        from sendwise.serving.batch_profiles import BatchProfiles

        self.profiles = BatchProfiles(serving)
        """A batch's live profiles, read once for its facts and reused by the live renderer."""
        self.facts = FactSource(store, serving, clock, self.profiles)
        self._defs: dict[tuple[str, int], JourneyDefinition] = {}
        self._weights: dict[tuple[str, str], dict[str, float]] = {}
        self._recovered: set[str] = set()

    # -- definitions -----------------------------------------------------------------------
    def journeys(self, *, active_only: bool = True) -> list[JourneyDefinition]:
        out = []
        for rec in self.store.journeys.all():
            if active_only and rec.status != "active":
                continue
            out.append(self.definition(rec.name, rec.version, rec.definition))
        return out

    def definition(self, name: str, version: int, raw: Mapping | None = None) -> JourneyDefinition:
        if (name, version) not in self._defs:
            if raw is None:
                rec = self.store.journeys.get(name, version)
                raw = rec.definition if rec is not None else {}
            self._defs[(name, version)] = parse_journey(dict(raw))
        return self._defs[(name, version)]

    def _versions(self) -> dict[str, int]:
        return {r.name: r.version for r in self.store.journeys.all()}

    # -- triggers ----------------------------------------------------------------------------
    def poll_events(self, *, page: int = 5000, max_pages: int = 20) -> int:
        """Apply the intake events after the watermark; returns the events read."""
        read = 0
        for _ in range(max_pages):
            seq = self.store.watermarks.get(WATERMARK)
            rows = self.store.intake.since(seq, page)
            if not rows:
                break
            self.on_events(rows)
            self.store.watermarks.set(WATERMARK, int(rows[-1]["seq"]), self.clock())
            read += len(rows)
            if len(rows) < page:
                break
        return read

    def on_events(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Entries, goal exits and wake-ups the events ask for; returns the entries made."""
        defs = self.journeys()
        if not defs:
            return 0
        waits = {s.value for d in defs for s in d.steps if s.kind == "wait_for"}
        plan, entered = Plan(), 0
        for ev in events:
            cid, name = ev.get("customer_id"), ev.get("event")
            if not cid or ev.get("type") != "track" or not name:
                continue
            for d in defs:
                is_goal = d.goal is not None and d.goal.event == name
                is_entry = d.trigger.kind == "event" and trigger_matches(d.trigger, ev)
                if not (is_goal or is_entry):
                    continue
                have = plan.kinds(d.name, cid)
                if (is_goal and "entry" in have) or (is_entry and "goal" in have):
                    entered += self._apply(plan, defs)
                    plan = Plan()
                if is_goal:
                    plan.goals.setdefault(d.name, {})[cid] = (event_time(ev), goal_value(ev))
                if is_goal and is_entry:  # a repeat order: it ends the earlier pass, then
                    entered += self._apply(plan, defs)  # enters the next (re-entry rule)
                    plan = Plan()
                if is_entry:
                    key = f"{d.name}:{ev.get('message_id')}"
                    plan.entries.setdefault(d.name, {}).setdefault(
                        cid, Entering(cid, key, event_time(ev))
                    )
            if name in waits:
                plan.wakes.setdefault(str(name), set()).add(str(cid))
        return entered + self._apply(plan, defs)

    def on_changes(self, changes: Iterable[Mapping[str, Any]]) -> int:
        """Entries made by segment and score changes (``sendwise.serving.publish``)."""
        changes = list(changes)
        plan = Plan()
        defs = self.journeys()
        for d in defs:
            for e in change_entries(d, changes):
                plan.entries.setdefault(d.name, {}).setdefault(e.customer_id, e)
        return self._apply(plan, defs)

    def poll_dates(self) -> int:
        """Once a day per journey: enter the customers whose date attribute is today (month
        and day: a birthday) or whose days since the last order reach the trigger's count,
        from the published profiles. Keyed by the day, so a second look the same day (or a
        restart) enters nobody twice."""
        defs = [d for d in self.journeys() if d.trigger.kind == "date"]
        version = self.store.snapshots.current_version()
        if not defs or version is None:
            return 0
        today = self.clock().date()
        marks = self.store.watermarks
        due = [d for d in defs if marks.get(f"journeys.date.{d.name}") < today.toordinal()]
        if not due:
            return 0
        info = self.store.snapshots.info(version)
        as_of = getattr(info, "as_of", None)
        lag = (today - as_of.date()).days if isinstance(as_of, datetime) else 0
        who: dict[str, list[Entering]] = {d.name: [] for d in due}
        now = self.clock()
        for row in self.store.snapshots.profiles(version):
            cid = str(row["customer_id"])
            full = self.store.snapshots.profile_in(version, cid) or {}
            profile = full.get("profile") or {}
            if isinstance(profile, str):
                profile = json.loads(profile)
            for d in due:
                if date_matches(d, profile, today, lag):
                    who[d.name].append(Entering(cid, f"{d.name}:date:{today}:{cid}", now))
        entered = 0
        for d in due:
            entered += self.enter(d, who[d.name])
            self.store.watermarks.set(f"journeys.date.{d.name}", today.toordinal(), now)
        return entered

    def enter(self, defn: JourneyDefinition, entering: Sequence[Entering]) -> int:
        """Enter customers (re-entry rule and holdout applied); returns the states made."""
        if not entering:
            return 0
        now = self.clock()
        version = self._versions().get(defn.name, 1)
        last = self.store.journeys.last_entries(defn.name, [e.customer_id for e in entering])
        rows = []
        for e in entering:
            prev = last.get(e.customer_id)
            rule = defn.entry
            if prev is not None:
                if prev.open or rule.reentry == "never":
                    continue
                if rule.reentry == "after" and rule.after and prev.entered_at + rule.after > now:
                    continue
            entry = 1 if prev is None else prev.entry + 1
            held = rule.holdout > 0 and fraction("holdout", defn.name, e.customer_id) < rule.holdout
            window = defn.goal.within if defn.goal and defn.goal.within else timedelta(0)
            rows.append(JourneyState(
                state_id=digest(defn.name, e.customer_id, entry), journey=defn.name,
                version=version, customer_id=e.customer_id, entry=entry, entry_key=e.key[:300],
                step=None, seq=0, status="holdout" if held else "waiting",
                due_at=now + window if held else now, wake_at=now, holdout=held, entered_at=now,
                updated_at=now))  # fmt: skip
        return int(self.store.journeys.enter(rows))

    def _apply(self, plan: Plan, defs: Sequence[JourneyDefinition]) -> int:
        if not plan:
            return 0
        by_name = {d.name: d for d in defs}
        entered = 0
        for name, who in plan.entries.items():
            entered += self.enter(by_name[name], list(who.values()))
        now = self.clock()
        for name, goals in plan.goals.items():
            d = by_name[name]
            last = self.store.journeys.last_entries(name, list(goals))
            within = d.goal.within if d.goal else None
            converted = {
                cid: value
                for cid, (at, value) in goals.items()
                if cid in last and (within is None or at <= last[cid].entered_at + within)
            }
            self.store.journeys.exit(name, list(goals), "goal", now, converted=converted)
        names = [d.name for d in defs]
        for event, customers in plan.wakes.items():
            states = self.store.journeys.waiting_for(event, sorted(customers), names)
            if states:
                self.store.journeys.wake([s.state_id for s in states], event, now)
        return entered

    # -- due steps ------------------------------------------------------------------------------
    def run_due(self, now: datetime | None = None, limit: int = 1000) -> int:
        """Claim and run up to ``limit`` due states per journey; returns the states run."""
        now = now or self.clock()
        done = 0
        for d in self.journeys():
            states = self.store.journeys.claim_due(
                d.name, now=now, limit=limit, owner=self.owner, lease_until=now + LEASE
            )
            if states:
                done += self._run(d.campaign_id, states, now)
        return done

    def _run(self, campaign_id: str, states: list[JourneyState], now: datetime) -> int:
        out = Effects()
        self.facts.clear()
        self.facts.batch([st.customer_id for st in states if not st.holdout])
        self._weights = {}
        after: list[JourneyState] = []
        for st in states:
            defn = self.definition(st.journey, st.version)
            try:
                after.append(advance(st, defn, now, self.facts, out, self._split_weights))
            except Exception:  # one customer's failure must not stop the others
                logger.exception("journey %s: state %s failed", st.journey, st.state_id)
                failed = {"status": "exited", "due_at": None, "exit_reason": "error"}
                after.append(JourneyState(**{**st.row(), **failed, "finished_at": now}))
        # effects first (each keyed, so a rerun adds nothing), then the states and the log
        if out.messages:
            self.store.messages.add_messages(campaign_id, out.messages, now)
        if out.updates:
            self.store.intake.append(out.updates)
        if out.webhooks:
            from sendwise.serving.hooks import enqueue

            enqueue(self.store, out.webhooks, at=now)
        return int(self.store.journeys.save_states(after, out.steps, owner=self.owner))

    def _split_weights(self, defn: JourneyDefinition, step: Any) -> dict[str, float]:
        """An adaptive split's shares: Thompson sampling over the goal conversions of the
        states that took each arm so far, with the step's floor; computed once per run."""
        key = (defn.name, step.id)
        if key not in self._weights:
            from sendwise.uplift.bandit import HOLDOUT, ThompsonAllocator

            seen = self.store.journeys.arm_outcomes(defn.name)
            arms = list(step.value)
            alloc = ThompsonAllocator(arms, holdout=0.0, floor=step.floor, seed=len(self._weights))
            trials = {a: seen.get(a, (0, 0))[0] for a in arms}
            wins = {a: seen.get(a, (0, 0))[1] for a in arms}
            shares = alloc.shares(wins, trials)
            shares.pop(HOLDOUT, None)
            self._weights[key] = shares
        return self._weights[key]

    def deliver_due(
        self,
        renderer: Any,
        messenger: Any,
        *,
        now: datetime | None = None,
        journals: Path | None = None,
    ) -> int:
        """Send the due messages of every journey through the send pipeline; returns sent.
        ``journals``: the folder of the acceptance journals (one per journey and worker
        process, ``<campaign>.w<pid>.keys``); the first time a journey is sent here, every
        worker's journal of it is recovered first (what a killed one saw accepted is recorded
        sent, not sent again)."""
        from sendwise.delivery.pipeline import deliver, recover

        sent = 0
        for d in self.journeys():  # a paused journey's queued messages wait for its resume
            journal = None
            if journals is not None:
                if d.campaign_id not in self._recovered:
                    recover(self.store, d.campaign_id, journals / f"{d.campaign_id}.keys")
                    self._recovered.add(d.campaign_id)
                journal = journals / f"{d.campaign_id}.w{os.getpid()}.keys"
            if self.store.messages.count(d.campaign_id) == 0:
                continue
            policy = SendPolicy.from_settings(
                self.settings.campaigns,
                frequency_cap=d.frequency_cap,
                quiet_hours=d.quiet_hours,
                purpose=d.purpose,
                topic=d.topic,
                tombstone_key=policy_key(self.settings),  # never a message to an erased person
            )
            report = deliver(self.store, d.campaign_id, renderer, messenger,
                             self.settings.delivery, policy=policy, now=now,
                             freeze_gc=False, journal=journal)  # fmt: skip
            sent += report.sent
        return sent

    # -- status ------------------------------------------------------------------------------
    def status(self, name: str) -> JourneyStatus:
        from sendwise.journeys.service import journey_status

        return journey_status(self.store, name)

    def pause(self, name: str) -> None:
        from sendwise.journeys.service import set_journey_status

        set_journey_status(self.store, name, "paused", self.clock())

    def resume(self, name: str) -> None:
        from sendwise.journeys.service import set_journey_status

        set_journey_status(self.store, name, "active", self.clock())


def date_matches(
    defn: JourneyDefinition, profile: Mapping[str, Any], today: date, lag: int
) -> bool:
    """Whether a profile meets a date trigger today (``lag``: days since the snapshot's as-of)."""
    t = defn.trigger
    if t.days_since_last_order is not None:
        days = profile.get("recency_days")
        return isinstance(days, int | float) and int(days) + lag == t.days_since_last_order
    value = profile.get(t.date or "")
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value[:10])
        except ValueError:
            return False
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date):
        return False
    if (value.month, value.day) == (2, 29) and not _leap(today.year):
        return (today.month, today.day) == (2, 28)
    return (value.month, value.day) == (today.month, today.day)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
