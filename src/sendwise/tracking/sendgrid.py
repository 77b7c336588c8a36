"""SendGrid's signed event webhook: verify the signature, map the events to store events.

SendGrid signs ``timestamp + raw body`` with ECDSA (P-256, SHA-256); the signature (base64 DER)
and the timestamp come in the ``X-Twilio-Email-Event-Webhook-Signature`` and ``...-Timestamp``
headers, the public key (base64 DER SubjectPublicKeyInfo) is shown in SendGrid's settings.
Events name their message through ``custom_args`` (sendwise puts ``message_key`` there) and are
deduplicated by ``sg_event_id``.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from sendwise.errors import ConfigError, SignatureError, TrackingError

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"

# SendGrid event -> store email_event type
EVENT_TYPES = {
    "delivered": "delivered",
    "open": "open",
    "click": "click",
    "bounce": "bounce",
    "blocked": "bounce",
    "dropped": "bounce",
    "deferred": "bounce",
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
SUPPRESS = {"spamreport": "complaint", "unsubscribe": "unsubscribe"}


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    try:
        key = load_der_public_key(base64.b64decode(text))
    except (ValueError, TypeError):
        raise ConfigError("tracking.sendgrid_public_key is not a base64 DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("tracking.sendgrid_public_key is not an elliptic-curve key")
    return key


def verify_signature(
    key: ec.EllipticCurvePublicKey,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    max_age: float,
    now: float | None = None,
) -> None:
    """Raise SignatureError unless ``signature`` signs ``timestamp + body`` and is recent."""
    if not signature or not timestamp:
        raise SignatureError("webhook without a signature")
    try:
        key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError):
        raise SignatureError("webhook signature does not verify") from None
    try:
        age = (now or time.time()) - float(timestamp)
    except ValueError:
        raise SignatureError("webhook timestamp is not a number") from None
    if abs(age) > max_age:
        raise SignatureError("webhook timestamp too old (replay?)")


def hard_bounce(item: dict[str, Any]) -> bool:
    """A bounce that will not go away: SendGrid's type "bounce" (not "blocked") or a 5.x.x."""
    if item.get("event") != "bounce":
        return False
    kind = str(item.get("type") or "bounce")
    status = str(item.get("status") or "5")
    return kind == "bounce" and status.startswith("5")


def to_events(body: bytes) -> list[dict[str, Any]]:
    """The store events (with ``_suppress`` for the recorder) of a verified webhook body."""
    try:
        items = json.loads(body)
    except ValueError:
        raise TrackingError("webhook body is not JSON") from None
    if not isinstance(items, list):
        raise TrackingError("webhook body is not a list of events")
    events = []
    for item in items:
        if not isinstance(item, dict) or item.get("event") not in EVENT_TYPES:
            continue  # processed, deferred-like and future event kinds are not ours
        args = item.get("custom_args") or {}
        key = (args.get("message_key") if isinstance(args, dict) else None) or item.get(
            "message_key"
        )
        ident = item.get("sg_event_id") or f"{key}:{item.get('event')}:{item.get('timestamp')}"
        kind = EVENT_TYPES[item["event"]]
        reason = None
        if kind == "bounce":
            kind = "bounce" if hard_bounce(item) else "soft_bounce"
            reason = str(item.get("reason") or item.get("response") or "") or None
        event = {
            "event_id": f"sendgrid:{ident}",
            "message_id": key,
            "email": (item.get("email") or "").strip().lower() or None,
            "type": kind,
            "occurred_at": datetime.fromtimestamp(int(item.get("timestamp") or 0), UTC).replace(
                tzinfo=None
            ),
            "url": item.get("url"),
            "user_agent": item.get("useragent"),
            "is_machine": bool(item.get("sg_machine_open", False)),
            "reason": reason,
            "_ip": item.get("ip"),
        }
        if hard_bounce(item):
            event["_suppress"] = "hard_bounce"
        elif item["event"] in SUPPRESS:
            event["_suppress"] = SUPPRESS[item["event"]]
        events.append(event)
    return events
