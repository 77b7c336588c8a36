"""Journey definitions (TOML or YAML): the model, :func:`load_journey` and :func:`validate`.

A definition is a trigger (an event with an optional ``where`` rule over its properties, a
segment entered or left, a score crossing a threshold, or a date attribute), a goal, entry rules
(re-entry, holdout) and a list of steps run in order (``next``, ``then`` / ``else`` and split
arms jump). The full reference is docs/journeys.md. Parsing checks the shape (unknown keys,
kinds, durations); :func:`validate` checks the names against the project (events, templates,
fields, step ids) and refuses a cycle that has no wait. Every problem is one
:class:`~sendwise.errors.JourneyError` line naming it; nothing is stored before both pass.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from sendwise.errors import JourneyError
from sendwise.journeys.durations import _shown, parse_clock, parse_duration

NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,55}$")
STEP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
KINDS = ("wait", "wait_until", "wait_for", "send", "if", "split", "update", "webhook", "exit")
WAITS = ("wait", "wait_until", "wait_for")
STEP_KEYS = {*KINDS, "id", "then", "else", "timeout", "next"}
TOP_KEYS = {"name", "description", "trigger", "goal", "entry", "steps", "frequency_cap",
            "quiet_hours", "purpose"}  # fmt: skip
TRIGGER_KEYS = {"event", "where", "segment", "on", "score", "above", "below", "date",
                "days_since_last_order"}  # fmt: skip
MAX_STEPS = 200


@dataclass(frozen=True)
class Trigger:
    kind: str
    """event, segment, score or date"""
    event: str | None = None
    where: str | None = None
    segment: str | None = None
    on: str = "enter"
    score: str | None = None
    above: float | None = None
    below: float | None = None
    date: str | None = None
    days_since_last_order: int | None = None


@dataclass(frozen=True)
class Goal:
    event: str
    within: timedelta | None = None


@dataclass(frozen=True)
class Entry:
    reentry: str = "never"
    """never, always or after"""
    after: timedelta | None = None
    holdout: float = 0.0


@dataclass(frozen=True)
class Step:
    id: str
    kind: str
    value: Any
    """The kind's value: a duration, "09:00"/"best_hour", an event, a template, a rule, the
    split's {arm: weight}, the update's {attribute: value}, a webhook type, True for exit."""
    then: str | None = None
    otherwise: str | None = None
    timeout: timedelta | None = None
    next: str | None = None


@dataclass(frozen=True)
class JourneyDefinition:
    name: str
    description: str
    trigger: Trigger
    steps: tuple[Step, ...]
    goal: Goal | None = None
    entry: Entry = field(default_factory=Entry)
    frequency_cap: int | None = None
    quiet_hours: bool = True
    purpose: str = "marketing"
    raw: dict[str, Any] = field(default_factory=dict, compare=False)
    """The definition as read (what is stored, JSON)."""

    @property
    def campaign_id(self) -> str:
        """The ``campaign`` row its messages belong to."""
        return f"journey-{self.name}"

    def index(self, step_id: str) -> int:
        for i, step in enumerate(self.steps):
            if step.id == step_id:
                return i
        raise JourneyError(f"journey {self.name!r} has no step {step_id!r}")

    def step(self, step_id: str) -> Step:
        return self.steps[self.index(step_id)]

    def following(self, step_id: str) -> str | None:
        """The step after ``step_id`` in reading order (``next`` when it sets one)."""
        i = self.index(step_id)
        if self.steps[i].next:
            return self.steps[i].next
        return self.steps[i + 1].id if i + 1 < len(self.steps) else None

    def successors(self, step: Step) -> list[str]:
        """Every step that can run right after ``step``."""
        if step.kind == "exit":
            return []
        after = self.following(step.id)
        out: list[str | None]
        if step.kind in ("if", "wait_for"):
            out = [step.then or after, step.otherwise or after]
        elif step.kind == "split":
            ids = {s.id for s in self.steps}
            out = [arm if arm in ids else after for arm in step.value]
        else:
            out = [after]
        return sorted({s for s in out if s})


def _fail(where: str, msg: str) -> JourneyError:
    return JourneyError(f"{where}: {msg}")


def _keys(data: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _fail(where, "must be a table of settings")
    unknown = sorted(str(k) for k in data if k not in allowed)
    if unknown:
        raise _fail(
            where, f"unknown setting {_shown(unknown[0])}; known: {', '.join(sorted(allowed))}"
        )
    return data


def _text(value: Any, where: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 4000 or "\x00" in value:
        raise _fail(where, f"{_shown(value)} must be a non-empty text")
    return value.strip()


def _number(value: Any, where: str, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
        raise _fail(where, f"{_shown(value)} must be a number from {lo:g} to {hi:g}")
    return float(value)


def _trigger(data: Any) -> Trigger:
    d = _keys(data, TRIGGER_KEYS, "trigger")
    kinds = [k for k in ("event", "segment", "score", "date", "days_since_last_order") if k in d]
    if len(kinds) != 1:
        raise _fail("trigger", "needs exactly one of event, segment, score, date, "
                               "days_since_last_order")  # fmt: skip
    kind = kinds[0]
    extra = {"event": {"where"}, "segment": {"on"}, "score": {"above", "below"}}.get(kind, set())
    stray = sorted(set(d) - {kind, *extra})
    if stray:
        raise _fail("trigger", f"{stray[0]!r} does not go with a {kind} trigger")
    if kind == "event":
        return Trigger("event", event=_text(d["event"], "trigger.event"),
                       where=_text(d.get("where"), "trigger.where", required=False))  # fmt: skip
    if kind == "segment":
        on = d.get("on", "enter")
        if on not in ("enter", "leave"):
            raise _fail("trigger.on", f'{_shown(on)} must be "enter" or "leave"')
        return Trigger("segment", segment=_text(d["segment"], "trigger.segment"), on=on)
    if kind == "score":
        if ("above" in d) == ("below" in d):
            raise _fail("trigger", "a score trigger needs one of above or below")
        above = _number(d["above"], "trigger.above", -1e12, 1e12) if "above" in d else None
        below = _number(d["below"], "trigger.below", -1e12, 1e12) if "below" in d else None
        return Trigger("score", score=_text(d["score"], "trigger.score"), above=above, below=below)
    if kind == "date":
        return Trigger("date", date=_text(d["date"], "trigger.date"))
    days = _number(d["days_since_last_order"], "trigger.days_since_last_order", 1, 36500)
    return Trigger("date", days_since_last_order=int(days))


def _step(data: Any, i: int) -> Step:
    where = f"step {i + 1}"
    d = _keys(data, STEP_KEYS, where)
    sid = d.get("id")
    if not isinstance(sid, str) or not STEP_ID.match(sid):
        raise _fail(where, f"id {_shown(sid)} must be 1-40 letters, digits, _ or -")
    where = f"step {sid!r}"
    kinds = [k for k in KINDS if k in d]
    if len(kinds) != 1:
        raise _fail(where, f"needs exactly one of {', '.join(KINDS)}")
    kind, raw = kinds[0], d[kinds[0]]
    links = {k: _text(d.get(k), f"{where}.{k}", required=False) for k in ("then", "else", "next")}
    allowed = {"if": {"then", "else"}, "wait_for": {"then", "else", "timeout"}}.get(kind, set())
    stray = sorted(k for k in ("then", "else", "timeout") if k in d and k not in allowed)
    if stray:
        raise _fail(where, f"{stray[0]!r} does not go with {kind}")
    timeout = None
    value: Any
    if kind == "wait":
        value = parse_duration(raw, f"{where}.wait")
    elif kind == "wait_until":
        if raw == "best_hour":
            value = raw
        else:
            hour, minute = parse_clock(raw, f"{where}.wait_until")
            value = f"{hour:02d}:{minute:02d}"
    elif kind == "wait_for":
        value = _text(raw, f"{where}.wait_for")
        if "timeout" not in d:
            raise _fail(where, 'wait_for needs a timeout (e.g. timeout = "2d")')
        timeout = parse_duration(d["timeout"], f"{where}.timeout")
    elif kind in ("send", "if", "webhook"):
        value = _text(raw, f"{where}.{kind}")
    elif kind == "split":
        if not isinstance(raw, dict) or not 2 <= len(raw) <= 20:
            raise _fail(where, "split needs 2 to 20 arms, e.g. {a = 0.5, b = 0.5}")
        value = {}
        for arm, weight in raw.items():
            if not isinstance(arm, str) or not STEP_ID.match(arm):
                raise _fail(where, f"split arm {_shown(arm)} must be 1-40 letters, digits, _ or -")
            value[arm] = _number(weight, f"{where}.split.{arm}", 0, 1e9)
        if sum(value.values()) <= 0:
            raise _fail(where, "split weights must not all be 0")
    elif kind == "update":
        if not isinstance(raw, dict) or not raw:
            raise _fail(where, "update needs a table of attribute = value")
        for k, v in raw.items():
            if not isinstance(k, str) or not STEP_ID.match(k):
                raise _fail(where, f"update attribute {_shown(k)} must be a plain name")
            if not (v is None or isinstance(v, str | int | float | bool)):
                raise _fail(where, f"update value of {k!r} must be text, a number or true/false")
        value = dict(raw)
    else:  # exit
        if raw is not True:
            raise _fail(where, "exit must be true")
        value = True
    return Step(sid, kind, value, links["then"], links["else"], timeout, links["next"])


def parse_journey(data: Any) -> JourneyDefinition:
    """The definition from its parsed TOML/YAML (shape checked; names by :func:`validate`)."""
    d = _keys(data, TOP_KEYS, "journey")
    name = d.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise _fail("name", f"{_shown(name)} must be 1-56 lower-case letters, digits, _ or -")
    if "trigger" not in d:
        raise _fail("journey", "needs a [trigger]")
    steps_raw = d.get("steps")
    if not isinstance(steps_raw, list) or not 1 <= len(steps_raw) <= MAX_STEPS:
        raise _fail("journey", f"needs 1 to {MAX_STEPS} [[steps]]")
    steps = tuple(_step(s, i) for i, s in enumerate(steps_raw))
    seen: set[str] = set()
    for s in steps:
        if s.id in seen:
            raise _fail(f"step {s.id!r}", "the id is used twice")
        seen.add(s.id)
    goal = None
    if "goal" in d:
        g = _keys(d["goal"], {"event", "within"}, "goal")
        within = parse_duration(g["within"], "goal.within") if "within" in g else None
        goal = Goal(_text(g.get("event"), "goal.event") or "", within)
    e = _keys(d.get("entry", {}), {"reentry", "holdout"}, "entry")
    reentry, after = str(e.get("reentry", "never")), None
    if reentry.startswith("after"):
        after = parse_duration(reentry[5:].strip(), "entry.reentry")
        reentry = "after"
    elif reentry not in ("never", "always"):
        raise _fail(
            "entry.reentry", f'{_shown(reentry)} must be never, always or "after <duration>"'
        )
    holdout = _number(e.get("holdout", 0.0), "entry.holdout", 0, 0.9)
    cap = d.get("frequency_cap")
    if cap is not None:
        cap = int(_number(cap, "frequency_cap", 1, 1000))
    quiet = d.get("quiet_hours", True)
    if not isinstance(quiet, bool):
        raise _fail("quiet_hours", "must be true or false")
    return JourneyDefinition(
        name=name,
        description=_text(d.get("description", name), "description") or name,
        trigger=_trigger(d["trigger"]),
        steps=steps,
        goal=goal,
        entry=Entry(reentry, after, holdout),
        frequency_cap=cap,
        quiet_hours=quiet,
        purpose=_text(d.get("purpose", "marketing"), "purpose") or "marketing",
        raw=data,
    )


def load_journey(path: Path | str) -> JourneyDefinition:
    """Read and parse a .toml, .yaml or .yml journey file (names are checked by validate)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise JourneyError(
            f"{path.name}: cannot read the journey file ({exc.__class__.__name__})"
        ) from None
    return loads_journey(text, yaml=path.suffix.lower() in (".yaml", ".yml"), source=path.name)


def loads_journey(text: str, *, yaml: bool = False, source: str = "journey") -> JourneyDefinition:
    """:func:`load_journey` from text."""
    try:
        if yaml:
            import yaml as pyyaml

            data = pyyaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except Exception as exc:  # TOMLDecodeError, yaml.YAMLError, RecursionError
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        raise JourneyError(
            f"{source}: not valid {'YAML' if yaml else 'TOML'}: {first[:200]}"
        ) from None
    return parse_journey(data)


# the checks against the project's names live in validation.py; re-exported here as the
# contract names them
from sendwise.journeys.validation import KnownNames, validate  # noqa: E402

__all__ = [
    "Entry",
    "Goal",
    "JourneyDefinition",
    "KnownNames",
    "Step",
    "Trigger",
    "load_journey",
    "loads_journey",
    "parse_journey",
    "validate",
]
