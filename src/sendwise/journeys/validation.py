"""A parsed journey checked against the project's names: events, templates, fields of the live
profile, segments, step ids, and no cycle that runs without a wait (it would loop forever
within one tick). :func:`validate` raises one :class:`~sendwise.errors.JourneyError` line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sendwise.errors import JourneyError, SendwiseError
from sendwise.journeys.conditions import check, event_rule, event_schema
from sendwise.warehouse.profile_columns import PREDICTIONS

if TYPE_CHECKING:
    from sendwise.journeys.definition import JourneyDefinition

SPEC_EVENTS = (
    # Segment's e-commerce spec v2 and the common lifecycle events
    "Products Searched", "Product List Viewed", "Product List Filtered", "Promotion Viewed",
    "Promotion Clicked", "Product Clicked", "Product Viewed", "Product Added", "Product Removed",
    "Cart Viewed", "Checkout Started", "Checkout Step Viewed", "Checkout Step Completed",
    "Payment Info Entered", "Order Updated", "Order Completed", "Order Refunded",
    "Order Cancelled", "Coupon Entered", "Coupon Applied", "Coupon Denied", "Coupon Removed",
    "Product Added to Wishlist", "Product Removed from Wishlist", "Wishlist Product Added to Cart",
    "Product Shared", "Cart Shared", "Product Reviewed", "Signed Up", "Signed In", "Signed Out",
    "Account Created", "Subscription Started", "Subscription Cancelled", "Email Subscribed",
)  # fmt: skip
LIVE_FIELDS = {
    "cart_items": "int64",
    "live_orders": "int64",
    "live_events": "int64",
    "days_since_last_activity": "float64",
}
"""Fields the engine adds from the events since the snapshot (see engine ``facts``)."""
SCORE_FIELDS = {k: v for k, v in PREDICTIONS.items() if not v.startswith("array")}


@dataclass(frozen=True)
class KnownNames:
    """What a definition may name. ``fields``: field -> Ibis type of the live profile (the
    snapshot's profile columns, the scores, :data:`LIVE_FIELDS`); ``segments``: None means
    not checked (nothing published yet)."""

    events: frozenset[str] = frozenset(SPEC_EVENTS)
    templates: frozenset[str] = frozenset()
    fields: dict[str, str] = field(default_factory=lambda: {**SCORE_FIELDS, **LIVE_FIELDS})
    segments: frozenset[str] | None = None

    def with_events(self, seen: Iterable[str]) -> KnownNames:
        return KnownNames(self.events | set(seen), self.templates, self.fields, self.segments)


def _unknown(kind: str, name: str, known: Iterable[str], where: str) -> JourneyError:
    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return JourneyError(f"{where}: unknown {kind} {name!r}{hint}")


def _rule(schema: dict[str, str], rule: str, where: str) -> None:
    try:
        check(schema, rule)
    except SendwiseError as exc:
        raise JourneyError(f"{where}: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # the compiler's own failure on odd text: still one line
        raise JourneyError(f"{where}: rule cannot be read ({exc.__class__.__name__})") from None


def validate(defn: JourneyDefinition, known: KnownNames) -> None:
    """Raise one JourneyError line for the first problem; return None when the journey can
    be stored."""
    t = defn.trigger
    if t.event is not None and t.event not in known.events:
        raise _unknown("event", t.event, known.events, "trigger.event")
    if t.where:
        rule = event_rule(t.where)
        _rule(event_schema(rule), rule, "trigger.where")
    if t.segment is not None and known.segments is not None and t.segment not in known.segments:
        raise _unknown("segment", t.segment, known.segments, "trigger.segment")
    if t.score is not None and t.score not in SCORE_FIELDS:
        raise _unknown("score", t.score, SCORE_FIELDS, "trigger.score")
    if t.date is not None and t.date not in known.fields:
        raise _unknown("date attribute", t.date, known.fields, "trigger.date")
    if defn.goal is not None and defn.goal.event not in known.events:
        raise _unknown("event", defn.goal.event, known.events, "goal.event")

    ids = [s.id for s in defn.steps]
    for step in defn.steps:
        where = f"step {step.id!r}"
        for key, target in (("then", step.then), ("else", step.otherwise), ("next", step.next)):
            if target is not None and target not in ids:
                raise _unknown("step id", target, ids, f"{where}.{key}")
        if step.kind == "send" and step.value not in known.templates:
            raise _unknown("template", step.value, known.templates, where)
        if step.kind == "wait_for" and step.value not in known.events:
            raise _unknown("event", step.value, known.events, where)
        if step.kind == "if":
            _rule(known.fields, step.value, where)
    cycle = _cycle_without_wait(defn)
    if cycle:
        raise JourneyError(
            f"steps {' -> '.join(repr(s) for s in cycle)}: a cycle without a wait "
            "(it would run forever); put a wait step in it"
        )


def _cycle_without_wait(defn: JourneyDefinition) -> list[str] | None:
    """A cycle among steps that are not waits (each runs at once after the previous)."""
    from sendwise.journeys.definition import WAITS

    instant = {s.id: s for s in defn.steps if s.kind not in WAITS}
    edges = {sid: [n for n in defn.successors(s) if n in instant] for sid, s in instant.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:  # iterative enough: at most MAX_STEPS deep
        state[node] = 1
        path.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for sid in instant:
        if sid not in state:
            found = visit(sid)
            if found:
                return found
    return None


def known_names(settings: Any, store: Any = None) -> KnownNames:
    """The names of a project: the spec's events and those seen by intake, its templates
    (project folder and starters), the live profile's fields (from the published snapshot
    when there is one) and its segments."""
    templates = frozenset(template_names(settings))
    fields: dict[str, str] = {**SCORE_FIELDS, **LIVE_FIELDS}
    segments: frozenset[str] | None = None
    events: set[str] = set()
    if store is not None:
        version = store.snapshots.current_version()
        if version is not None:
            for first in store.snapshots.profiles(version, batch=1):
                full = store.snapshots.profile(str(first["customer_id"])) or {}
                for k, v in (full.get("profile") or {}).items():
                    fields.setdefault(k, _ibis_type(v))
                break
            info = store.snapshots.info(version)
            names = (getattr(info, "meta", None) or {}).get("segments")
            if isinstance(names, list):
                segments = frozenset(str(n) for n in names)
        recent = store.intake.since(max(store.intake.max_seq() - 5000, 0), 5000)
        events = {str(e["event"]) for e in recent if e.get("event")}
    return KnownNames(frozenset(SPEC_EVENTS) | events, templates, fields, segments)


def template_names(settings: Any) -> list[str]:
    """The templates a send step may name: ``*.html`` of the project's templates folder and of
    the starters, by their path inside it (``welcome.html``), blocks and layouts left out."""
    from sendwise.content.render import STARTERS

    names: set[str] = set()
    for folder in (settings.path(settings.content.templates), STARTERS):
        if folder.is_dir():
            for path in folder.rglob("*.html"):
                rel = path.relative_to(folder).as_posix()
                if not rel.startswith("blocks/") and path.name != "layout.html":
                    names.add(rel)
    return sorted(names)


def _ibis_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"
