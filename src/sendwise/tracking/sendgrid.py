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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from sendwise.errors import ConfigError, InputError, SignatureError

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


# Unix times accepted in an event: 2000-01-01 to 2100-01-01 (anything else is not a real time)
MIN_TIMESTAMP, MAX_TIMESTAMP = 946_684_800, 4_102_444_800
TEXT_LIMIT = 10_000


class BadField(Exception):
    def __init__(self, name: str, why: str) -> None:
        super().__init__(f"{name}: {why}")


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "an object", list: "a list", bool: "true/false", str: "text"}.get(
        type(value), "a number"
    )


def _text(item: dict[str, Any], name: str, limit: int = TEXT_LIMIT, *, numbers: bool = False):
    """``item[name]`` as text (None when absent or null); BadField when it is not text (or a
    number, with ``numbers``), holds a NUL or a lone surrogate, or is longer than ``limit``."""
    value = item.get(name)
    if value is None:
        return None
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise BadField(name, f"expected text, got {_kind(value)}")
    if "\x00" in value:
        raise BadField(name, "contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadField(name, "is not valid Unicode (a lone surrogate)") from None
    if len(value) > limit:
        raise BadField(name, f"longer than {limit} characters")
    return value


def _timestamp(item: dict[str, Any]) -> datetime:
    value = item.get("timestamp")
    if value is None:
        raise BadField("timestamp", "missing")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadField("timestamp", f"expected a Unix time in seconds, got {_kind(value)}")
    if not (MIN_TIMESTAMP <= value <= MAX_TIMESTAMP):  # also NaN and infinities
        raise BadField("timestamp", "not a Unix time between the years 2000 and 2100")
    return datetime.fromtimestamp(int(value), UTC).replace(tzinfo=None)


def _event(item: dict[str, Any], name: str) -> dict[str, Any]:
    """The store event of one SendGrid event of a kind sendwise records; BadField when a field
    has a value the store cannot take."""
    args = item.get("custom_args")
    if args is not None and not isinstance(args, dict):
        raise BadField("custom_args", f"expected an object, got {_kind(args)}")
    key = (_text(args, "message_key", 64) if args else None) or _text(item, "message_key", 64)
    when = _timestamp(item)
    sg_id = _text(item, "sg_event_id", 150)
    ident = sg_id or f"{key}:{name}:{item['timestamp']}"
    kind = EVENT_TYPES[name]
    machine = item.get("sg_machine_open", False)
    if not isinstance(machine, bool):
        raise BadField("sg_machine_open", f"expected true/false, got {_kind(machine)}")
    reason = None
    for name_ in ("type", "status"):
        _text(item, name_, 100, numbers=True)
    if kind == "bounce":
        kind = "bounce" if hard_bounce(item) else "soft_bounce"
        reason = (
            _text(item, "reason", numbers=True) or _text(item, "response", numbers=True) or None
        )
    email = (_text(item, "email", 320) or "").strip().lower() or None
    event = {
        "event_id": f"sendgrid:{ident}",
        "message_id": key,
        "email": email,
        "type": kind,
        "occurred_at": when,
        "url": _text(item, "url"),
        "user_agent": (_text(item, "useragent") or "")[:500] or None,
        "is_machine": machine,
        "reason": reason,
        "_ip": _text(item, "ip", 100),
    }
    if hard_bounce(item):
        event["_suppress"] = "hard_bounce"
    elif name in SUPPRESS:
        event["_suppress"] = SUPPRESS[name]
    return event


@dataclass
class Parsed:
    """A webhook body split into the events to record and those refused, each refused one
    with its index in the body and the reason (``event 3: timestamp: ...``)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[tuple[Any, str]] = field(default_factory=list)
    ignored: int = 0
    """Events of kinds sendwise does not record (processed, deferred-like, future kinds)."""


def parse_events(body: bytes) -> Parsed:
    """Validate a verified webhook body: InputError (400) when it is not a JSON list; each
    event that is not usable is set aside with its index and field, never an exception."""
    try:
        items = json.loads(body)
    except (ValueError, RecursionError):
        raise InputError("webhook body is not JSON") from None
    if not isinstance(items, list):
        raise InputError("webhook body is not a list of events")
    parsed = Parsed()
    for index, item in enumerate(items):
        try:
            if not isinstance(item, dict):
                raise BadField("(event)", f"expected an object, got {_kind(item)}")
            name = item.get("event")
            if not isinstance(name, str):
                raise BadField("event", f"expected text, got {_kind(name)}")
            if name not in EVENT_TYPES:
                parsed.ignored += 1
                continue
            parsed.events.append(_event(item, name))
        except BadField as bad:
            parsed.rejected.append((item, f"event {index}: {bad}"))
    return parsed


def to_events(body: bytes) -> list[dict[str, Any]]:
    """The store events (with ``_suppress`` for the recorder) of a verified webhook body; the
    unusable ones are left out (see :func:`parse_events` for them)."""
    return parse_events(body).events
