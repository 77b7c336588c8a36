"""Running one customer's journey state from where it stands to its next wait (or its end).

:func:`advance` takes a claimed state, runs the steps that are due one after another and
returns the state to write back, adding to :class:`Effects` what the steps did: message rows
(a send), intake ``identify`` rows (an update), webhook events and one step-log row per step.
Every effect carries a key derived from (journey, customer, entry, step number, step id): the
store ignores a key it holds already, so a batch run again after a crash (its states not yet
written back) adds nothing twice - each step takes effect exactly once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sendwise.journeys.conditions import evaluate
from sendwise.journeys.definition import JourneyDefinition, Step
from sendwise.journeys.facts import Facts, local_due
from sendwise.store.journeys import JourneyState


def digest(*parts: object) -> str:
    """32 hex digits of the parts (a message key, a state id, a step key)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def fraction(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (holdout, split)."""
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:15], 16) / 16**15


def split_arm(arms: dict[str, float], journey: str, step: str, customer_id: str) -> str:
    x = fraction("split", journey, step, customer_id) * sum(arms.values())
    for arm, weight in arms.items():
        if x < weight:
            return arm
        x -= weight
    return list(arms)[-1]


@dataclass
class Effects:
    messages: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    webhooks: list[Any] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)


def _next_after(defn: JourneyDefinition, step: Step, state: JourneyState) -> str | None:
    """Where a wait that is over goes (or an adaptive split, which pauses after its choice)."""
    after = defn.following(step.id)
    if step.kind == "split":
        return state.arm if state.arm in {s.id for s in defn.steps} else after
    if step.kind == "wait_for":
        return (step.then or after) if state.waiting_for is None else (step.otherwise or after)
    return after


def _finish(state: JourneyState, status: str, reason: str, now: datetime) -> JourneyState:
    return replace(state, status=status, exit_reason=reason, due_at=None, finished_at=now,
                   updated_at=now, waiting_for=None)  # fmt: skip


def advance(
    state: JourneyState,
    defn: JourneyDefinition,
    now: datetime,
    facts: Callable[[str], Facts],
    out: Effects,
    weights: Callable[[JourneyDefinition, Step], dict[str, float]] | None = None,
) -> JourneyState:
    """The state after running every step due now (see the module doc). ``weights``: the
    current shares of an adaptive (``thompson``) split's arms."""
    if state.holdout:
        return _finish(state, "done", "holdout", now)
    ids = {s.id for s in defn.steps}
    if state.step is None:
        current: str | None = defn.steps[0].id if state.seq == 0 else None
    elif state.step not in ids:
        return _finish(state, "exited", "step removed", now)
    else:  # a wait under way, now over
        current = _next_after(defn, defn.step(state.step), state)
    state = replace(state, waiting_for=None)
    # waits count from when this step fell due, not from when a worker got to it
    base = min(state.wake_at or now, now)
    limit = len(defn.steps) * 4 + 2  # a cycle without a wait is refused at save
    for i in range(limit):
        if current is None:
            return _finish(state, "done", "completed", now)
        step = defn.step(current)
        seq = state.seq + 1
        key = digest(defn.name, state.customer_id, state.entry, seq, step.id)
        state = replace(state, seq=seq, step=step.id, updated_at=now)
        outcome, current, wait_until = _run(step, defn, state, key, now, base, facts, out, weights)
        out.steps.append(dict(step_key=key, state_id=state.state_id, journey=defn.name,
                              customer_id=state.customer_id, entry=state.entry, step=step.id,
                              kind=step.kind, outcome=outcome[:200], at=now))  # fmt: skip
        if step.kind == "split":
            state = replace(state, arm=outcome)
            if step.allocation == "thompson":
                # Its shares move with every conversion, so a run repeated after a crash
                # could choose another arm and send that arm's message too: the choice is
                # written back first, and the steps after it run from the stored arm.
                return replace(state, status="waiting", due_at=now, wake_at=now)
        if step.kind == "exit":
            return _finish(state, "exited", "exit step", now)
        if wait_until is not None:
            # (while a whole pass still fits in this run: a later one goes on where it stops)
            if wait_until <= now and step.kind != "wait_for" and limit - i > len(defn.steps) + 1:
                # Over already (a worker that was down or behind): go on in this run, the next
                # wait counted from when this one ended, so that how far behind the workers
                # were (one run or several) never changes what the customer gets.
                base = wait_until
                current = _next_after(defn, step, state)
                continue
            waiting = step.value if step.kind == "wait_for" else None
            return replace(state, status="waiting", due_at=wait_until, wake_at=wait_until,
                           waiting_for=waiting)  # fmt: skip
    return _finish(state, "exited", "too many steps", now)


def _run(
    step: Step,
    defn: JourneyDefinition,
    state: JourneyState,
    key: str,
    now: datetime,
    base: datetime,
    facts: Callable[[str], Facts],
    out: Effects,
    weights: Callable[[JourneyDefinition, Step], dict[str, float]] | None = None,
) -> tuple[str, str | None, datetime | None]:
    """(outcome, next step, wait until) of one step."""
    after = defn.following(step.id)
    cid = state.customer_id
    if step.kind == "wait":
        return "wait", None, base + step.value
    if step.kind == "wait_for":
        return f"wait for {step.value}", None, base + (step.timeout or timedelta(0))
    if step.kind == "wait_until":
        f = facts(cid)
        if step.value == "best_hour":
            if f.best_send_hour is None:
                return "best hour unknown", after, None
            return "wait", None, local_due(base, f.best_send_hour, 0, f.timezone)
        hour, minute = (int(x) for x in step.value.split(":"))
        return "wait", None, local_due(base, hour, minute, f.timezone)
    if step.kind == "send":
        f = facts(cid)
        variant = step.id if not state.arm else f"{step.id}.{state.arm}"
        out.messages.append(dict(message_key=key, customer_id=cid, email=f.email,
                                 variant=variant[:64], template=step.value, status="pending",
                                 reason=None, scheduled_at=now, timezone=f.timezone))  # fmt: skip
        return f"message {key}", after, None
    if step.kind == "if":
        yes = evaluate(step.value, facts(cid).values)
        return ("then" if yes else "else"), (step.then if yes else step.otherwise) or after, None
    if step.kind == "split":
        shares = step.value
        if step.allocation == "thompson" and weights is not None:
            shares = weights(defn, step)
        arm = split_arm(shares, defn.name, step.id, cid)
        return arm, (arm if arm in {s.id for s in defn.steps} else after), None
    if step.kind == "update":
        out.updates.append(dict(message_id=f"journey-{key}", type="identify", event=None,
                                user_id=cid, anonymous_id=None, customer_id=cid,
                                occurred_at=now, received_at=now, sent_at=None, properties={},
                                traits=dict(step.value), context={"journey": defn.name},
                                source=f"journey:{defn.name}"))  # fmt: skip
        return "updated", after, None
    if step.kind == "webhook":
        from sendwise.serving.hooks.events import WebhookEvent

        data = {"journey": defn.name, "step": step.id, "label": step.value,
                "customer_id": cid, "entry": state.entry}  # fmt: skip
        out.webhooks.append(WebhookEvent("journey.step", data, now, key=f"journey-{key}"))
        return "webhook", after, None
    return "exit", None, None  # exit
