"""Consent carried by identify calls, into the store's consent ledger (read by the send policy
at claim time).

An identify trait ``email_consent`` / ``emailConsent`` of true/false, granted/withdrawn, yes/no,
subscribed/unsubscribed is an email-marketing consent change (source ``identify``), for the
address in ``traits.email`` when there is one. The writer records it right after the event's
commit and before the answer, so a withdrawal holds for the next send; when it cannot be
recorded the request fails and the client's retry records it (the writer records the consent of
repeated calls too; recording the status already in force adds nothing). ``sendwise sync``
writes it to the warehouse ``consent`` table through the Segment preset, which reads the same
trait names and values, and records it in the store again as a backstop.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sendwise.store.records import record_consent
from sendwise.warehouse.presets.segment import CONSENT_TRAITS, consent_status


def as_object(value: Any) -> dict[str, Any]:
    """A JSON column's value as a dict (stores may hand back text)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, Mapping) else {}


def record_consents(repos: Any, rows: Iterable[Mapping[str, Any]]) -> int:
    """Record the consent changes of ``rows``' identify calls; returns how many were new."""
    recorded = 0
    for row in rows:
        if row["type"] != "identify" or not row.get("user_id"):
            continue
        traits = as_object(row.get("traits"))
        value = next((traits[k] for k in CONSENT_TRAITS if traits.get(k) is not None), None)
        status = consent_status(value) if value is not None else None
        if status is None:
            continue
        email = traits.get("email") if isinstance(traits.get("email"), str) else None
        at = row["occurred_at"]
        recorded += record_consent(
            repos,
            row["user_id"],
            status,
            email=email,
            source="identify",
            at=at if isinstance(at, datetime) else datetime.fromisoformat(str(at)),
        )
    return recorded
