"""What a claim hands over: the claimed messages, the facts the store knows about their
addresses, and the decisions a send policy takes on them.

Pure data and pure helpers (no SQL): the SQLAlchemy repositories and the in-memory fake build
the same :class:`Facts` and apply the same :class:`ClaimPolicy`, so the rules live in one place
(:class:`sendwise.delivery.policy.SendPolicy`) and are decided when a batch is claimed, not when
a campaign is planned (docs/adr/0051-send-policy-at-claim-time.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol


def utcnow() -> datetime:
    """Now in UTC, naive (the store's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


def normalize_email(email: object) -> str | None:
    """The address as consent and suppression know it: trimmed, lower case (None if empty)."""
    if email is None:
        return None
    text = str(email).strip().lower()
    return text or None


@dataclass(frozen=True, slots=True)
class Claimed:
    """One message handed to a sender (status ``sending`` in the store)."""

    message_key: str
    customer_id: str
    email: str | None
    variant: str
    template: str | None
    timezone: str | None = None
    address: str | None = field(init=False, compare=False, repr=False)
    """The email as consent and suppression know it (normalized once, read many times)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", normalize_email(self.email))


@dataclass(frozen=True)
class ConsentChange:
    """One row of the consent ledger."""

    customer_id: str
    email: str | None
    status: str
    recorded_at: datetime
    id: int = 0


@dataclass
class Facts:
    """What the store knows about the addresses of a claimed batch."""

    suppressed: dict[str, str] = field(default_factory=dict)
    """Suppression reason by address."""
    consent: dict[str, str] = field(default_factory=dict)
    """Consent in force (granted / withdrawn) by message key (absent: never given)."""
    recent_sends: dict[str, int] = field(default_factory=dict)
    """Sends to the address inside the policy's cap window."""
    erased: set[str] = field(default_factory=set)
    """Message keys whose customer id or address is on the privacy tombstone list."""
    topic: dict[str, str] = field(default_factory=dict)
    """Consent in force for the policy's topic (preference center) by message key."""
    too_frequent: dict[str, str] = field(default_factory=dict)
    """Message keys whose person chose fewer emails (weekly, monthly) and had one already."""


Verdict = Literal["send", "skip", "defer", "holdout"]


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    until: datetime | None = None
    """For ``defer``: not before this time (naive UTC)."""


SEND = Decision("send")


class ClaimPolicy(Protocol):
    """What the store needs of a send policy."""

    @property
    def channel(self) -> str: ...

    @property
    def purpose(self) -> str: ...

    def cap_since(self, now: datetime) -> datetime | None:
        """Count sends to each address from this time (None: no cap, nothing to count)."""

    def decide(self, batch: Sequence[Claimed], facts: Facts, now: datetime) -> list[Decision]:
        """One decision per message of ``batch``, in order."""


class KeyPart(Protocol):
    """A part of a campaign's messages chosen by the first digit of their keys (a Shard)."""

    @property
    def digits(self) -> tuple[str, ...]: ...

    def owns(self, key: str) -> bool: ...


@dataclass
class Claim:
    """The outcome of one claim: what to send now, and what the policy kept back."""

    ready: list[Claimed] = field(default_factory=list)
    skipped: list[tuple[Claimed, str]] = field(default_factory=list)
    deferred: list[tuple[Claimed, datetime]] = field(default_factory=list)
    held_out: list[Claimed] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return len(self.ready) + len(self.skipped) + len(self.deferred) + len(self.held_out)


def consent_by_message(
    batch: Iterable[Claimed], changes: Iterable[ConsentChange]
) -> dict[str, str]:
    """The consent in force for each message: the latest change recorded for its address, or
    for its customer record when a change carries no address (consent is the address owner's:
    a withdrawal by one customer record holds for every record with the same address)."""
    by_address: dict[str, ConsentChange] = {}
    by_customer: dict[str, ConsentChange] = {}
    for ch in changes:
        address = normalize_email(ch.email)
        book, key = (by_address, address) if address else (by_customer, ch.customer_id)
        known = book.get(key)
        if known is None or (ch.recorded_at, ch.id) > (known.recorded_at, known.id):
            book[key] = ch
    out: dict[str, str] = {}
    for msg in batch:
        found = [c for c in (by_address.get(msg.address or ""), by_customer.get(msg.customer_id))
                 if c is not None]  # fmt: skip
        if found:
            out[msg.message_key] = max(found, key=lambda c: (c.recorded_at, c.id)).status
    return out


def split(batch: Sequence[Claimed], decisions: Sequence[Decision]) -> Claim:
    """Sort a batch into a :class:`Claim` by the policy's decisions."""
    if len(decisions) != len(batch):
        raise ValueError("a policy must decide every claimed message")
    claim = Claim()
    for msg, d in zip(batch, decisions, strict=True):
        if d.verdict == "send":
            claim.ready.append(msg)
        elif d.verdict == "skip":
            claim.skipped.append((msg, d.reason or "skipped"))
        elif d.verdict == "defer" and d.until is not None:
            claim.deferred.append((msg, d.until))
        elif d.verdict == "holdout":
            claim.held_out.append(msg)
        else:
            raise ValueError(f"unknown decision {d!r}")
    return claim


def skipped_event(msg: Claimed, campaign_id: str, reason: str, at: datetime) -> dict[str, Any]:
    """The email_event that records a skip (the same id whether planning or a claim skipped)."""
    return dict(
        event_id=f"{msg.message_key}:skipped",
        customer_id=msg.customer_id,
        email=msg.email,
        message_id=msg.message_key,
        campaign_id=campaign_id,
        variant=msg.variant,
        type="skipped",
        occurred_at=at,
        reason=reason,
    )
