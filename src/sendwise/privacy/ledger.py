"""The consent ledger's use cases: signup with double opt-in, confirmation, the preference
center's choices, and objection to profiling.

Every change is a new row of the store's ``consent`` ledger (who, channel, purpose, status,
source, legal basis, time, and the proof: IP, user agent, the digest of the confirmation token);
the state in force is its latest row per address or customer (sendwise.store.claims), which the
send policy reads at claim time. Purposes: ``marketing`` (the email list), ``topic:<name>``
(preference-center topics), ``profiling`` (predictions and personalization).

Double opt-in: :func:`signup` records ``pending`` and sends one confirmation email whose link is
signed with the project's link key ring (like tracking links); :func:`confirm` checks the
signature, records ``granted`` with the proof, and a forged or altered link is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sendwise.errors import InputError, TrackingError
from sendwise.store.claims import normalize_email, utcnow

if TYPE_CHECKING:
    from sendwise.config import Settings
    from sendwise.keys import KeyRing
    from sendwise.store.connection import Store

logger = logging.getLogger(__name__)

CONFIRM = "confirm"
PROFILING = "profiling"


@dataclass(frozen=True)
class Proof:
    ip: str | None = None
    user_agent: str | None = None
    legal_basis: str = "consent"

    def fields(self, token: str | None = None) -> dict[str, str | None]:
        digest = hashlib.sha256(token.encode()).hexdigest()[:64] if token else None
        return {
            "ip": self.ip,
            "user_agent": self.user_agent,
            "legal_basis": self.legal_basis,
            "token": digest,
        }


def confirmation_token(ring: KeyRing, customer_id: str, email: str) -> str:
    from sendwise.delivery.links import sign

    nonce = secrets.token_urlsafe(9)
    return sign(ring.current, f"{CONFIRM}:{nonce}:{customer_id}\n{email}")


def read_confirmation(ring: KeyRing, token: str) -> tuple[str, str]:
    """(customer_id, email) of a genuine confirmation token; SignatureError when forged."""
    from sendwise.delivery.links import read_token

    _nonce, rest = read_token(ring, token, CONFIRM)
    customer_id, sep, email = rest.partition("\n")
    if not sep or not customer_id or not email:
        raise TrackingError("not a confirmation link")
    return customer_id, email


def confirmation_url(settings: Settings, token: str) -> str:
    return f"{settings.delivery.base_url.rstrip('/')}/confirm/{token}"


def _confirmation_message(settings: Settings, customer_id: str, email: str, url: str) -> Any:
    from sendwise.content.message import RenderedEmail
    from sendwise.delivery.mime import compose

    shop = settings.content.shop
    text = (
        f"Please confirm that you want emails from {shop.name}:\n\n{url}\n\n"
        "If you did not ask for them, ignore this message: nothing more will be sent.\n"
        f"\n{shop.postal_address}\n"
    )
    html_url = url.replace("&", "&amp;").replace('"', "&quot;")
    body = (
        f"<p>Please confirm that you want emails from {shop.name}.</p>"
        f'<p><a href="{html_url}">Yes, send me emails</a></p>'
        "<p>If you did not ask for them, ignore this message.</p>"
    )
    rendered = RenderedEmail(f"Please confirm your subscription to {shop.name}", "", body, text)
    key = "confirm-" + hashlib.blake2b(f"{customer_id}\0{url}".encode(), digest_size=12).hexdigest()
    return compose(
        rendered,
        key=key,
        to=email,
        sender=settings.delivery.sender,
        links={"unsubscribe": url, "preferences": url},
        customer_id=customer_id,
    )


async def _send(settings: Settings, message: Any) -> str:
    from sendwise.delivery import make_messenger

    async with make_messenger(settings) as messenger:
        outcome = await messenger.send(message)
    return str(outcome.status)


async def signup_async(
    settings: Settings,
    store: Store,
    ring: KeyRing,
    customer_id: str,
    email: str,
    *,
    source: str,
    proof: Proof = Proof(),
    at: datetime | None = None,
) -> str:
    """Someone asks for marketing email: with ``privacy.double_opt_in`` their consent is
    ``pending`` and a confirmation email goes out (returns ``pending``); without it, ``granted``."""
    address = normalize_email(email)
    if not customer_id or address is None or "@" not in address:
        raise InputError("a signup needs a customer id and an email address")
    at = at or utcnow()
    if not settings.privacy.double_opt_in:
        store.consents.record(
            customer_id, "granted", email=address, source=source, at=at, proof=proof.fields()
        )
        return "granted"
    token = confirmation_token(ring, customer_id, address)
    store.consents.record(
        customer_id, "pending", email=address, source=source, at=at, proof=proof.fields(token)
    )
    url = confirmation_url(settings, token)
    await _send(settings, _confirmation_message(settings, customer_id, address, url))
    return "pending"


def signup(
    settings: Settings, store: Store, ring: KeyRing, customer_id: str, email: str, **kw: Any
) -> str:
    """:func:`signup_async` outside an event loop (the CLI, scripts)."""
    return asyncio.run(signup_async(settings, store, ring, customer_id, email, **kw))


def confirm(
    store: Store, ring: KeyRing, token: str, *, proof: Proof = Proof(), at: datetime | None = None
) -> str:
    """Follow a confirmation link: ``granted`` with its proof; SignatureError when forged."""
    customer_id, email = read_confirmation(ring, token)
    store.consents.record(
        customer_id,
        "granted",
        email=email,
        source="double_opt_in",
        at=at or utcnow(),
        proof=proof.fields(token),
    )
    return customer_id


def set_topics(
    store: Store,
    customer_id: str,
    email: str | None,
    chosen: Iterable[str],
    topics: Iterable[str],
    *,
    source: str,
    proof: Proof = Proof(),
    at: datetime | None = None,
) -> None:
    """The preference center's topics: each known topic granted when chosen, else withdrawn."""
    at = at or utcnow()
    wanted = set(chosen)
    for topic in topics:
        store.consents.record(
            customer_id,
            "granted" if topic in wanted else "withdrawn",
            email=email,
            purpose=f"topic:{topic}",
            source=source,
            at=at,
            proof=proof.fields(),
        )


def object_to_profiling(
    store: Store,
    customer_id: str,
    *,
    objects: bool = True,
    source: str = "cli",
    proof: Proof = Proof(),
    at: datetime | None = None,
) -> bool:
    """Record an objection to profiling (or its withdrawal): the next build leaves the person
    out of predictions and recommendations; what they consented to still reaches them."""
    return store.consents.record(
        customer_id,
        "withdrawn" if objects else "granted",
        purpose=PROFILING,
        source=source,
        at=at or utcnow(),
        proof={**proof.fields(), "legal_basis": "objection"},
    )


def objectors(store: Store) -> list[str]:
    """Customers whose latest profiling change is an objection."""
    frame = store.consents.changes("email", PROFILING)
    if frame.empty:
        return []
    latest = frame.sort_values(["recorded_at", "id"]).groupby("customer_id").tail(1)
    return sorted(str(c) for c in latest.loc[latest["status"] == "withdrawn", "customer_id"])


def confirmer(settings: Settings, ring: KeyRing) -> Any:
    """The token maker intake uses for double opt-in (None when ``privacy.double_opt_in`` is
    off): (customer id, address) -> a signed confirmation token, as :func:`signup` makes."""
    if not settings.privacy.double_opt_in:
        return None
    return lambda customer_id, email: confirmation_token(ring, customer_id, email)


async def send_confirmations(settings: Settings, items: Iterable[tuple[str, str, str]]) -> int:
    """Mail the confirmation email of each (customer id, address, token) consent recorded
    ``pending`` by intake; returns how many went. A failure is logged: the person stays
    ``pending``, so nothing but a confirmation can reach them (docs/privacy.md)."""
    sent = 0
    for customer_id, email, token in items:
        url = confirmation_url(settings, token)
        try:
            await _send(settings, _confirmation_message(settings, customer_id, email, url))
            sent += 1
        except Exception as exc:  # the consent is recorded; only the email is missing
            logger.error("confirmation email not sent: %s: %s", exc.__class__.__name__, exc)
    return sent
