"""The send policy: who may be sent a message now, decided when a batch is claimed.

One object for campaigns and journeys alike. The store claims a batch of due messages, gathers
the facts about their addresses in the same transaction (suppression, consent in force per
address and purpose, recent sends) and asks :meth:`SendPolicy.decide`; a message that may not go
is recorded ``skipped`` with the reason (and a ``skipped`` email event), one that falls in quiet
hours goes back to ``pending`` until they end, and only the rest is handed to a messenger. An
unsubscribe, complaint, bounce or withdrawal therefore holds for every message not yet sent,
whenever it was planned (docs/adr/0051-send-policy-at-claim-time.md).

Pure: no store, no clock; ``now`` is given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sendwise.config import CampaignSettings
from sendwise.privacy.hashing import person_hashes
from sendwise.store.claims import SEND, Claimed, Decision, Facts

HOLDOUT = "holdout"
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
UTC_ZONE = ZoneInfo("UTC")


@lru_cache(maxsize=512)
def _zone(name: str | None) -> ZoneInfo:
    if not name:
        return UTC_ZONE
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE


@dataclass(frozen=True)
class SendPolicy:
    """Consent, suppression, frequency cap, quiet hours and holdout, for one channel and
    purpose. The defaults (opt-out, no cap, no quiet hours) still never send to a suppressed
    address or one whose consent was withdrawn."""

    channel: str = "email"
    purpose: str = "marketing"
    consent: Literal["opt_in", "opt_out"] = "opt_out"
    """opt_in: only addresses whose latest consent is granted; opt_out: all but withdrawn."""
    frequency_cap: int | None = None
    """At most this many sends per address in ``cap_days`` (None: no cap)."""
    cap_days: int = 7
    quiet_start: int | None = None
    """Local hour from which nothing is sent until ``quiet_end`` (None: no quiet hours)."""
    quiet_end: int = 8
    topic: str | None = None
    """The preference-center topic of these messages: a person who declined it is skipped."""
    tombstone_key: bytes | None = field(default=None, repr=False)
    """The project's tombstone key: a message to an erased person is skipped (None: the store
    cannot look them up, only their erasure's deletion of their messages holds)."""

    def identity_hashes(self, batch: Sequence[Claimed]) -> dict[str, list[str]]:
        """Tombstone hashes of each message's customer id and address (empty without a key)."""
        key = self.tombstone_key
        if key is None:
            return {}
        return {m.message_key: person_hashes(key, m.customer_id, m.address) for m in batch}

    @classmethod
    def from_settings(
        cls,
        settings: CampaignSettings,
        *,
        frequency_cap: int | None = None,
        quiet_hours: bool = True,
        purpose: str = "marketing",
        topic: str | None = None,
        tombstone_key: bytes | None = None,
    ) -> SendPolicy:
        """The project's policy; a campaign or journey may set its own cap or drop quiet hours.
        Pass ``tombstone_key`` (:func:`sendwise.privacy.tombstones.policy_key`) so that no
        message reaches an erased person."""
        return cls(
            purpose=purpose,
            topic=topic,
            tombstone_key=tombstone_key,
            consent="opt_in" if settings.consent == "opt_in" else "opt_out",
            frequency_cap=frequency_cap or settings.frequency_cap,
            cap_days=settings.cap_days,
            quiet_start=settings.quiet_start if quiet_hours else None,
            quiet_end=settings.quiet_end,
        )

    def cap_since(self, now: datetime) -> datetime | None:
        return None if self.frequency_cap is None else now - timedelta(days=self.cap_days)

    def _quiet(self, hour: int) -> bool:
        start, end = self.quiet_start, self.quiet_end
        if start is None or start == end:
            return False
        return (hour >= start or hour < end) if start > end else start <= hour < end

    def _quiet_until(self, now: datetime, zone: ZoneInfo) -> datetime | None:
        """The end of the quiet window (naive UTC) when ``now`` is inside it in ``zone``."""
        local = now.replace(tzinfo=UTC_ZONE).astimezone(zone)
        if not self._quiet(local.hour):
            return None
        end = local.replace(hour=self.quiet_end, minute=0, second=0, microsecond=0)
        if end <= local:
            end = (local + timedelta(days=1)).replace(
                hour=self.quiet_end, minute=0, second=0, microsecond=0
            )
        return end.astimezone(UTC_ZONE).replace(tzinfo=None)

    def decide(self, batch: Sequence[Claimed], facts: Facts, now: datetime) -> list[Decision]:
        """The first reason each message may not go now, or ``send``. The cap counts
        ``facts.recent_sends`` (sent in the window, or claimed by another batch and not yet
        recorded) plus the messages of this batch to the same address decided ``send``."""
        cap = self.frequency_cap
        cap_reason = f"frequency cap: {cap} emails in {self.cap_days} days"
        quiet: dict[str | None, datetime | None] = {}
        taken: Counter[str] = Counter()
        out: list[Decision] = []
        for msg in batch:
            address = msg.address
            if msg.message_key in facts.erased:
                out.append(Decision("skip", "erased (privacy request)"))
                continue
            if msg.variant == HOLDOUT:
                out.append(Decision("holdout"))
                continue
            if address is None or not EMAIL_SHAPE.match(address):
                out.append(Decision("skip", "no valid email address"))
                continue
            suppressed = facts.suppressed.get(address)
            if suppressed is not None:
                out.append(Decision("skip", f"suppressed: {suppressed}"))
                continue
            consent = facts.consent.get(msg.message_key)
            if consent == "withdrawn":
                out.append(Decision("skip", "consent withdrawn"))
                continue
            if consent == "pending":
                out.append(Decision("skip", "consent not confirmed (double opt-in)"))
                continue
            if consent is None and self.consent == "opt_in":
                out.append(Decision("skip", f"no {self.purpose} consent"))
                continue
            if facts.topic.get(msg.message_key) == "withdrawn":
                out.append(Decision("skip", f"declined the topic {self.topic}"))
                continue
            if msg.message_key in facts.too_frequent:
                out.append(Decision("skip", facts.too_frequent[msg.message_key]))
                continue
            if cap is not None and facts.recent_sends.get(address, 0) + taken[address] >= cap:
                out.append(Decision("skip", cap_reason))
                continue
            if self.quiet_start is not None:
                if msg.timezone not in quiet:
                    quiet[msg.timezone] = self._quiet_until(now, _zone(msg.timezone))
                until = quiet[msg.timezone]
                if until is not None:
                    out.append(Decision("defer", "quiet hours", until))
                    continue
            taken[address] += 1  # two records with one address in a batch count twice
            out.append(SEND)
        return out
