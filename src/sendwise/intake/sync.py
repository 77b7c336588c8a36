"""``sendwise sync`` for the event log: live Segment calls into the warehouse, exactly once.

Events of the store's ``intake_event`` table above the watermark ``warehouse.intake`` (in
``repos.watermarks``) are written back as the Segment calls they were (JSON Lines, times with
their UTC offset, the clock-skew-corrected time as ``timestamp``) and loaded with the ordinary
``ingest(..., preset="segment")``: the very mapping a Segment file goes through, so a live event
and the same event in a file land alike (event row, customer attributes from identify traits,
consent changes, products, orders, identity resolution; docs/adr/0097). The merge is keyed on
messageId and the watermark moves only after a load, so a sync repeated or interrupted anywhere
adds nothing twice. A call the warehouse refuses (an implausible timestamp, a malformed email
trait) goes to ``reject`` with its reason; it never stops the sync.

identify calls that carry a consent trait are also recorded in the store's consent ledger
(source ``identify``; already done by the writer at intake, so this is a backstop).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sendwise.config import Settings
from sendwise.ingest.load import ingest
from sendwise.intake.consent import Confirmation, as_object, record_consents
from sendwise.keys import key_ring
from sendwise.privacy.ledger import confirmer, send_confirmations
from sendwise.store.records import utcnow
from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)

WATERMARK = "warehouse.intake"
CHUNK = 50_000


@dataclass
class IntakeSyncReport:
    read: int = 0
    inserted: int = 0
    rejected: int = 0
    consents: int = 0
    watermark: int = 0


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat() + "+00:00"
    text = str(value).replace(" ", "T")
    return text if text.endswith(("Z", "+00:00")) else text + "+00:00"


def as_segment_call(row: Mapping[str, Any]) -> dict[str, Any]:
    """The Segment call an event-log row was made from (the inverse of intake.calls)."""
    kind = row["type"]
    properties, traits = as_object(row.get("properties")), as_object(row.get("traits"))
    call: dict[str, Any] = {
        "type": kind,
        "messageId": row["message_id"],
        "userId": row.get("user_id"),
        "anonymousId": row.get("anonymous_id"),
        "timestamp": _iso(row["occurred_at"]),
        "receivedAt": _iso(row.get("received_at")),
        "sentAt": _iso(row.get("sent_at")),
        "context": as_object(row.get("context")),
    }
    if kind == "alias":
        call["previousId"] = call.pop("anonymousId")
        if "anonymousId" in properties:
            call["anonymousId"] = properties["anonymousId"]
    elif kind == "group":
        call["groupId"] = properties.get("groupId")
        call["traits"] = traits
    else:
        call["properties"] = properties
        call["traits"] = traits
        if kind == "track":
            call["event"] = row.get("event")
        elif kind in ("page", "screen"):
            call["name"] = row.get("event")
    return {k: v for k, v in call.items() if v is not None}


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(as_segment_call(row), ensure_ascii=False) + "\n")


def confirmation_mailer(settings: Settings) -> Callable[[list[Confirmation]], int]:
    """Mail confirmations outside an event loop (sync, the stream consumer)."""
    return lambda items: asyncio.run(send_confirmations(settings, items))


def lazy_confirmer(settings: Settings) -> Callable[[str, str], str] | None:
    """Double opt-in's token maker, reading the link keys only when a consent needs one (a
    project without delivery keys syncs consent-free events as before)."""
    if not settings.privacy.double_opt_in:
        return None
    made: list[Callable[[str, str], str]] = []

    def confirm(customer_id: str, email: str) -> str:
        if not made:
            made.append(confirmer(settings, key_ring(settings.delivery)))
        return made[0](customer_id, email)

    return confirm


def sync_intake(
    repos: Any, wh: Warehouse, settings: Settings, *, chunk: int = CHUNK
) -> IntakeSyncReport:
    """Copy every event-log row above the watermark into the warehouse, ``chunk`` at a time."""
    lenient = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"max_reject_share": 1.0})}
    )
    report = IntakeSyncReport(watermark=repos.watermarks.get(WATERMARK))
    confirm = lazy_confirmer(settings)
    while True:
        rows = repos.intake.since(report.watermark, chunk)
        if not rows:
            return report
        last = int(rows[-1]["seq"])
        path = settings.path("sync", f"intake_{report.watermark + 1}_{last}.jsonl")
        _write(path, rows)
        loaded = ingest(wh, lenient, path, preset="segment", force=True)
        path.unlink()
        sent: list[Confirmation] = []
        report.consents += record_consents(repos, rows, confirm=confirm, sent=sent)
        if sent:
            confirmation_mailer(settings)(sent)
        report.read += len(rows)
        report.inserted += loaded.tables["event"].inserted if "event" in loaded.tables else 0
        report.rejected += loaded.rejected
        repos.watermarks.set(WATERMARK, last, utcnow())
        report.watermark = last
        logger.info("sync: %d intake events up to seq %d", len(rows), last)
