"""Journey use cases that touch the store: save a validated definition (a new version, and the
``campaign`` row its messages belong to), pause and resume, and the status counts.

The CLI (``sendwise journey ...``) and tests call these; nothing is stored unless the
definition validates against the project's names.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sendwise.errors import JourneyError
from sendwise.journeys.definition import JourneyDefinition, KnownNames, validate
from sendwise.store.repositories import CampaignRecord

WATERMARK = "journeys"
"""The engine's place in the intake log (``sendwise.journeys.engine.WATERMARK``)."""


def _plain(raw: dict[str, Any]) -> dict[str, Any]:
    """The definition as JSON can store it (a YAML date becomes its text)."""
    return json.loads(json.dumps(raw, default=str))


def save_journey(store: Any, defn: JourneyDefinition, known: KnownNames, at: datetime) -> int:
    """Validate, then store a new version of the journey; returns the version."""
    validate(defn, known)
    record = CampaignRecord(
        campaign_id=defn.campaign_id,
        name=f"journey:{defn.name}",
        status="sending",
        definition={"kind": "journey", "journey": defn.name},
    )
    store.campaigns.save(record, at)
    if not store.journeys.all() and store.watermarks.get(WATERMARK) == 0:
        # the first journey of the project: the engine reads the events from now on, not the
        # intake log's whole history (which would enter everyone who ever had a cart)
        store.watermarks.set(WATERMARK, store.intake.max_seq(), at)
    return int(store.journeys.save(defn.name, _plain(defn.raw), at))


def set_journey_status(store: Any, name: str, status: str, at: datetime) -> None:
    if status not in ("active", "paused"):
        raise JourneyError(f"a journey is active or paused, not {status!r}")
    if not store.journeys.set_status(name, status, at):
        raise JourneyError(f"no journey named {name!r}")


def journey_status(store: Any, name: str) -> Any:
    from sendwise.journeys.engine import JourneyStatus

    rec = store.journeys.get(name)
    if rec is None:
        raise JourneyError(f"no journey named {name!r}")
    out = JourneyStatus(rec.name, rec.version, rec.status)
    for step, status, reason, holdout, n in store.journeys.counts(name):
        out.entered += n
        if holdout:
            out.holdout += n
        if status == "waiting":
            out.waiting += n
        elif status == "running":
            out.running += n
        elif status == "done":
            out.done += n
        elif status == "exited":
            out.exited[reason or "exited"] = out.exited.get(reason or "exited", 0) + n
        if status in ("waiting", "running") and step:
            out.at_step[step] = out.at_step.get(step, 0) + n
    frame = store.messages.plan_frame(f"journey-{name}")
    if len(frame):
        out.messages = {str(k): int(v) for k, v in frame["status"].value_counts().items()}
    return out
