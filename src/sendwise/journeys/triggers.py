"""From intake events and publish changes to entries, goal exits and wake-ups.

Events are read in log order; per journey and customer what they ask for is gathered into a
:class:`Plan` (entries, goals, wake-ups) and applied in that order. When a customer's next event
would ask for something of another kind than the plan holds for them (a goal after an entry in
the same page: ``Product Added`` then ``Order Completed``), the plan is applied first, so the
outcome is the one the events' order gives: the entry is made, then ended by the goal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sendwise.journeys.conditions import evaluate, event_rule
from sendwise.journeys.definition import JourneyDefinition, Trigger


@dataclass(frozen=True)
class Entering:
    customer_id: str
    key: str
    """What makes it enter (an event's id, a change's identity): entering on it twice is once."""
    at: datetime


@dataclass
class Plan:
    entries: dict[str, dict[str, Entering]] = field(default_factory=dict)
    """journey -> customer -> entering"""
    goals: dict[str, dict[str, tuple[datetime, float | None]]] = field(default_factory=dict)
    wakes: dict[str, set[str]] = field(default_factory=dict)
    """event -> customers"""

    def kinds(self, journey: str, customer_id: str) -> set[str]:
        out = set()
        if customer_id in self.entries.get(journey, {}):
            out.add("entry")
        if customer_id in self.goals.get(journey, {}):
            out.add("goal")
        return out

    def __bool__(self) -> bool:
        return bool(self.entries or self.goals or self.wakes)


def matches(trigger: Trigger, event: Mapping[str, Any]) -> bool:
    """Whether a track event is the journey's trigger event (its ``where`` included)."""
    if trigger.event is None or event.get("event") != trigger.event:
        return False
    if not trigger.where:
        return True
    props = event.get("properties")
    return evaluate(event_rule(trigger.where), props if isinstance(props, dict) else {})


def goal_value(event: Mapping[str, Any]) -> float | None:
    props = event.get("properties")
    if not isinstance(props, dict):
        return None
    for name in ("revenue", "total", "value"):
        v = props.get(name)
        if isinstance(v, int | float) and not isinstance(v, bool) and v == v:
            return float(v)
    return None


def event_time(event: Mapping[str, Any]) -> datetime:
    at = event.get("occurred_at") or event.get("received_at")
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return at.replace(tzinfo=None) if isinstance(at, datetime) else datetime(1970, 1, 1)


def change_entries(defn: JourneyDefinition, changes: list[Mapping[str, Any]]) -> list[Entering]:
    """The entries a publish's changes (segment entered / left, score crossed) make."""
    t, out = defn.trigger, []
    for c in changes:
        cid = c.get("customer_id")
        if not isinstance(cid, str):
            continue
        at = event_time({"occurred_at": c.get("at")})
        if t.kind == "segment":
            wanted = "segment.entered" if t.on == "enter" else "segment.left"
            if c.get("type") == wanted and c.get("segment") == t.segment:
                out.append(Entering(cid, f"{wanted}:{t.segment}:{c.get('snapshot')}:{cid}", at))
        elif t.kind == "score" and c.get("type") == "score.crossed" and c.get("score") == t.score:
            old, new = c.get("old"), c.get("new")
            if not isinstance(old, int | float) or not isinstance(new, int | float):
                continue
            up = t.above is not None and old < t.above <= new
            down = t.below is not None and new < t.below <= old
            if up or down:
                out.append(Entering(cid, f"score:{t.score}:{c.get('snapshot')}:{cid}", at))
    return out
