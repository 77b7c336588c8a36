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

Double opt-in (``privacy.double_opt_in``, docs/adr/0144): given a ``confirm`` function (the
intake writer and the sync pass one when the setting is on), a consent given while none is in
force (never given, or withdrawn) is recorded ``pending`` with the digest of a signed
confirmation token, and (customer id, address, token) is appended to ``sent`` for the caller to
mail the same confirmation email as /v1/privacy/signup; while ``pending`` or ``granted`` is in
force, a repeated consent adds nothing. A withdrawal is recorded at once, always. Without an
address no link can be mailed: the customer record is ``pending`` (nothing goes to them) until
they sign up.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sendwise.privacy.ledger import Proof
from sendwise.store.claims import normalize_email
from sendwise.store.records import record_consent
from sendwise.warehouse.presets.segment import CONSENT_TRAITS, consent_status


def as_object(value: Any) -> dict[str, Any]:
    """A JSON column's value as a dict (stores may hand back text)."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, Mapping) else {}


Confirmation = tuple[str, str, str]
"""(customer id, address, signed confirmation token) of a confirmation email to send."""


def _pending(
    repos: Any,
    customer_id: str,
    email: str | None,
    at: datetime,
    confirm: Callable[[str, str], str],
    sent: list[Confirmation],
) -> bool:
    """A consent under double opt-in: ``pending`` (and a confirmation) unless one is in force."""
    address = normalize_email(email)
    if repos.consents.in_force(customer_id, address) in ("granted", "pending"):
        return False
    if address is None or "@" not in address:
        return record_consent(repos, customer_id, "pending", source="identify", at=at)
    token = confirm(customer_id, address)
    proof = Proof().fields(token)
    new = record_consent(
        repos, customer_id, "pending", email=address, source="identify", at=at, proof=proof
    )
    if new:
        sent.append((customer_id, address, token))
    return new


def record_consents(
    repos: Any,
    rows: Iterable[Mapping[str, Any]],
    *,
    confirm: Callable[[str, str], str] | None = None,
    sent: list[Confirmation] | None = None,
) -> int:
    """Record the consent changes of ``rows``' identify calls; returns how many were new.
    With ``confirm`` (double opt-in) a new consent is ``pending`` and its confirmation is
    appended to ``sent`` (see the module doc)."""
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
        at = at if isinstance(at, datetime) else datetime.fromisoformat(str(at))
        if status == "granted" and confirm is not None:
            recorded += _pending(
                repos, row["user_id"], email, at, confirm, sent if sent is not None else []
            )
            continue
        recorded += record_consent(
            repos, row["user_id"], status, email=email, source="identify", at=at
        )
    return recorded
