"""The operational store as the domains see it: small repositories.

Each is a :class:`typing.Protocol` with two implementations, SQLAlchemy over SQLite or
PostgreSQL (:mod:`sendwise.store.sql`, reached as ``Store(url).messages`` ...) and an in-memory
fake (:class:`sendwise.store.memory.MemoryStore`) for fast unit tests. One contract suite
(tests/test_store_contract.py) runs against all three, so the fake cannot drift from the
database. Only ``store/`` (and ``warehouse/``) hold SQL (docs/adr/0050-store-repositories.md).

Times are naive UTC; addresses are compared trimmed and lower-cased.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import pandas as pd

from sendwise.store.claims import Claim, Claimed, ClaimPolicy, KeyPart
from sendwise.store.journeys import JourneyRepository
from sendwise.store.webhooks import WebhookRepository

SUPPRESSION_REASONS = ("hard_bounce", "complaint", "unsubscribe", "manual")
CONSENT_STATUSES = ("granted", "withdrawn", "pending")
"""``pending``: given but not yet confirmed (double opt-in); no marketing email until granted."""
PROOF_FIELDS = ("legal_basis", "ip", "user_agent", "token")
"""What a consent change may carry as proof (all optional)."""
DUE = ("pending", "sending")
PLAN_FIELDS = (
    "message_key",
    "customer_id",
    "email",
    "variant",
    "template",
    "status",
    "reason",
    "scheduled_at",
    "timezone",
)
EVENT_FIELDS = (
    "event_id",
    "customer_id",
    "email",
    "message_id",
    "campaign_id",
    "variant",
    "type",
    "occurred_at",
    "url",
    "user_agent",
    "is_machine",
    "reason",
)


@dataclass(frozen=True)
class CampaignRecord:
    campaign_id: str
    name: str
    status: str
    """created, planned, sending, done"""
    definition: dict[str, Any]


@dataclass(frozen=True)
class MessageInfo:
    """A stored message as tracking needs it."""

    message_key: str
    customer_id: str
    email: str | None
    campaign_id: str
    variant: str
    status: str
    updated_at: datetime


@dataclass(frozen=True)
class SuppressionChange:
    """An address to put on the suppression list, asked for by a tracking event (an
    unsubscribe, a bounce or complaint webhook); an ``unsubscribe`` of a known customer also
    withdraws the address's consent, at ``at``."""

    email: str
    reason: str
    source: str
    customer_id: str | None
    at: datetime


EventBatch = tuple[Sequence[Mapping[str, Any]], Sequence[SuppressionChange]]
BuildBatch = Callable[[Mapping[str, MessageInfo]], EventBatch]
"""Makes a tracking batch (events, suppression changes) from the stored messages it names."""


class CampaignRepository(Protocol):
    def save(self, record: CampaignRecord, at: datetime) -> str | None:
        """Store a new campaign, or replace one still ``created``; returns the status it had
        (None when new). One past ``created`` is left as it is."""

    def get(self, name_or_id: str) -> CampaignRecord | None: ...

    def set_status(
        self, campaign_id: str, status: str, *, only_from: str | None = None, at: datetime
    ) -> bool:
        """Move to ``status`` (from ``only_from`` only, when given); False when it did not."""


class MessageRepository(Protocol):
    def add_plan(self, campaign_id: str, rows: Sequence[Mapping[str, Any]], at: datetime) -> bool:
        """Move the campaign from ``created`` to ``planned`` and write every message row
        (``PLAN_FIELDS``) and a ``skipped`` event per skipped row, in one transaction; False
        (nothing written) when another run planned it first."""

    def assign_wave(
        self,
        campaign_id: str,
        placeholder: str,
        variants: Mapping[str, str],
        templates: Mapping[str, str | None],
        at: datetime,
    ) -> bool:
        """Give the messages of ``variants`` (message_key -> variant) still holding the
        ``placeholder`` variant their variant and its template, and make the ``waiting`` ones
        ``pending``, in one transaction; False (nothing changed) when another run assigned
        them first (campaigns/waves.py)."""

    def add_messages(
        self, campaign_id: str, rows: Sequence[Mapping[str, Any]], at: datetime
    ) -> int:
        """Insert ``pending`` (or other) message rows (``PLAN_FIELDS``) of a campaign that is
        already sending, such as a journey's: a row whose ``message_key`` is stored already is
        left as it is (a step run twice inserts once). Returns the rows inserted."""

    def sending_run(self, campaign_id: str) -> AbstractContextManager[bool]:
        """Held by a process while it claims and records messages of ``campaign_id``; several
        processes may hold runs of one campaign at once (PostgreSQL). Entering finds whether
        any other process is sending it: when none is, the messages a killed sender left
        ``sending`` go back to ``pending``; while a run is open, :meth:`claim_due` claims only
        ``pending`` messages, never another sender's in flight. Yields that finding (True:
        alone). See :mod:`sendwise.store.sending_runs`."""

    def claim_due(
        self,
        policy: ClaimPolicy,
        *,
        campaign_id: str,
        now: datetime,
        limit: int,
        shard: KeyPart | None = None,
        at: datetime | None = None,
    ) -> Claim:
        """Claim up to ``limit`` due messages (``pending`` or ``sending``; only ``pending``
        inside a :meth:`sending_run`; scheduled at or before ``now``), apply ``policy`` to them
        and commit, in one transaction: the skipped become ``skipped`` with their reason and a
        ``skipped`` event (at ``at``), the deferred ``pending`` at their new time, the rest
        ``sending`` (attempts + 1), returned ready.

        With a frequency cap, an address's count is its ``send`` events in the window plus its
        messages of any campaign claimed (``sending``) and not yet recorded, and claims with a
        cap are serialized (SQLite's write lock; a transaction advisory lock on PostgreSQL),
        so two campaigns sending at once cannot both pass the cap (docs/adr/0086)."""

    def record_outcomes(
        self, campaign_id: str, outcomes: Sequence[tuple[Claimed, str, str]], at: datetime
    ) -> None:
        """(message, ``sent`` or ``failed``, reason): the final status and a ``send`` or
        ``failed`` event each, in one transaction."""

    def recheck(
        self,
        policy: ClaimPolicy,
        *,
        campaign_id: str,
        batch: Sequence[Claimed],
        now: datetime,
        at: datetime,
    ) -> list[tuple[Claimed, str]]:
        """Just before claimed messages are handed over: look up the suppressions and
        consents of their addresses again and withhold those the policy now skips (an
        unsubscribe, complaint, bounce or withdrawal since the claim): each becomes
        ``skipped`` with its reason and a ``skipped`` event (at ``at``), in one transaction.
        Returns the withheld messages with their reasons (the frequency cap is not counted
        again: the claim counted it, see docs/adr/0085)."""

    def sending(self, campaign_id: str, keys: Sequence[str]) -> list[Claimed]:
        """Those of ``keys`` still ``sending`` (a killed run's, for its journal)."""

    def count(self, campaign_id: str, statuses: Iterable[str] = DUE) -> int: ...

    def plan_frame(self, campaign_id: str) -> pd.DataFrame:
        """Every message of the campaign (``PLAN_FIELDS`` columns)."""

    def find(self, keys: Iterable[str]) -> dict[str, MessageInfo]:
        """The stored messages among ``keys`` (unknown keys are left out)."""


class EventRepository(Protocol):
    def add(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Insert email events; one whose ``event_id`` is stored already is skipped."""

    def record_batch(self, keys: Sequence[str], build: BuildBatch) -> None:
        """The tracking writer's batch, in one transaction: read the stored messages of
        ``keys``, call ``build`` with them (by key) for the events to write and the suppression
        changes they ask for, then insert the events (duplicates by ``event_id`` skipped), put
        each address on the suppression list (one already there is kept) and, for an
        ``unsubscribe`` with a customer, record the withdrawn consent (unless withdrawal is
        already in force). Nothing is written if anything fails, ``build`` included."""

    def rows(self, **equal: Any) -> list[dict[str, Any]]:
        """Every event whose columns equal ``equal`` (all events without)."""

    def since(self, seq: int, limit: int) -> pd.DataFrame:
        """Up to ``limit`` events after sequence number ``seq``: ``seq`` + ``EVENT_FIELDS``."""

    def sends_by_customer(self, since: datetime) -> dict[str, int]:
        """``send`` events since ``since``, counted by customer."""

    def for_campaign(self, campaign_id: str, types: Iterable[str]) -> pd.DataFrame:
        """message_id, type, occurred_at, is_machine, url of the campaign's events."""


class ConsentRepository(Protocol):
    def record(
        self,
        customer_id: str,
        status: str,
        *,
        email: str | None = None,
        channel: str = "email",
        purpose: str = "marketing",
        source: str,
        at: datetime,
        proof: Mapping[str, str | None] | None = None,
    ) -> bool:
        """Record a consent change (with ``proof``: ``PROOF_FIELDS``); False (nothing
        written) when the status in force for that address (or customer, without one) is
        already ``status``. The ledger is append-only: the state is its latest row."""

    def import_changes(self, frame: pd.DataFrame) -> int:
        """Copy changes (the warehouse ``consent`` shape, optionally with ``email``); rows
        already held are skipped. Returns the rows added."""

    def changes(self, channel: str = "email", purpose: str = "marketing") -> pd.DataFrame:
        """customer_id, email, status, recorded_at, id of every change for channel/purpose."""

    def in_force_many(
        self, customer_ids: Sequence[str], channel: str = "email", purpose: str = "marketing"
    ) -> dict[str, str]:
        """``in_force(customer_id, None, ...)`` of many customer records in one read: the
        status of each customer with one, by id; customers with none are absent."""


class SuppressionRepository(Protocol):
    def add(
        self,
        email: str,
        reason: str,
        *,
        source: str = "",
        customer_id: str | None = None,
        at: datetime,
    ) -> bool:
        """Put an address on the global list; False when it already was."""

    def reasons(self, emails: Iterable[str] | None = None) -> dict[str, str]:
        """Reason by address, of ``emails`` (every address without)."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """A stored API key: its public id, name, scope, the SHA-256 of its secret part."""

    key_id: str
    name: str
    scope: str
    secret_hash: str
    rate_per_second: float | None
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyRepository(Protocol):
    def add(self, record: ApiKeyRecord) -> bool:
        """Store a new key; False (nothing written) when its name or id is taken."""

    def get(self, key_id: str) -> ApiKeyRecord | None: ...

    def all(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones too, oldest first."""

    def revoke(self, name: str, at: datetime) -> bool:
        """Revoke the key of that name; False when there is none or it was revoked already."""


LINKING = ("identify", "alias")
"""Intake calls that link an anonymous id (an alias's previousId) to a user id."""
INTAKE_FIELDS = (
    "message_id",
    "type",
    "event",
    "user_id",
    "anonymous_id",
    "customer_id",
    "occurred_at",
    "received_at",
    "sent_at",
    "properties",
    "traits",
    "context",
    "source",
)


class IntakeRepository(Protocol):
    """The intake event log: one row per Segment ``messageId`` (``INTAKE_FIELDS`` + ``seq``)."""

    def append(self, events: Sequence[Mapping[str, Any]]) -> list[bool]:
        """Insert in one transaction; per event, whether it was new (False: its ``message_id``
        was stored already, by an earlier call or earlier in this one)."""

    def since(self, seq: int, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` events after ``seq``, in ``seq`` order."""

    def for_customer(
        self,
        customer_id: str,
        *,
        since: datetime | None = None,
        anonymous_ids: Sequence[str] = (),
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` events of the customer (by ``customer_id``, or by one of
        ``anonymous_ids``) received after ``since``, oldest first."""

    def for_customers(
        self,
        customer_ids: Sequence[str],
        *,
        since: datetime | None = None,
        types: Sequence[str] | None = None,
        limit: int = 500,
    ) -> dict[str, list[dict[str, Any]]]:
        """:meth:`for_customer` (by ``customer_id``) of many customers in one read: every id
        asked for is a key, its newest ``limit`` events received after ``since`` (of one of
        ``types`` when given) oldest first, ``[]`` for a customer with none. A journey batch's
        facts are read with it."""

    def max_seq(self) -> int:
        """The newest ``seq`` (0 for an empty log)."""

    def links(self, anonymous_ids: Sequence[str]) -> dict[str, str]:
        """For each of ``anonymous_ids`` that an identify or alias call of the log linked to a
        ``user_id``, that user id (the first such call wins, as in the warehouse's identity
        resolution); ids never linked are absent. Intake resolves anonymous events with it."""


class WatermarkRepository(Protocol):
    """How far each reader of an event log has got (``sendwise sync``, webhooks ...)."""

    def get(self, name: str) -> int:
        """The reader's watermark (0 when it never read)."""

    def set(self, name: str, seq: int, at: datetime) -> None: ...


class SnapshotRepository(Protocol):
    """Published serving snapshots (``store/sql_snapshots.py``, docs/adr/0100): rows written
    by version while unseen, one switch makes a version current, readers read one version."""

    def begin(
        self, *, at: datetime, as_of: datetime | None, data_end: datetime | None, meta: dict
    ) -> int: ...
    def write(self, version: int, part: str, rows: Sequence[Mapping[str, Any]]) -> int: ...
    def switch(
        self, version: int, *, customers: int, at: datetime, meta: dict | None = None
    ) -> int | None: ...
    def discard(self, version: int) -> None: ...
    def prune(self, keep: int) -> list[int]: ...
    def current_version(self) -> int | None: ...
    def info(self, version: int | None = None) -> Any: ...
    def versions(self) -> list[Any]: ...
    def profile(self, customer_id: str) -> dict[str, Any] | None: ...
    def profile_in(self, version: int, customer_id: str) -> dict[str, Any] | None: ...
    def profiles_in(self, version: int, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """:meth:`profile_in` of many customers in one read: each held row by customer id,
        the customers the version lacks absent (a journey batch's live profiles)."""

    def profiles(self, version: int, batch: int = 5000) -> Iterator[dict[str, Any]]: ...
    def recommendations(self, version: int, customer_id: str) -> list[dict[str, Any]]: ...
    def recommendations_in(
        self, version: int, customer_ids: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """:meth:`recommendations` of many customers in one read (every id a key)."""

    def products(self, version: int, product_ids: Sequence[str]) -> dict[str, dict]: ...
    def similar(self, version: int, product_ids: Sequence[str]) -> list[tuple[str, str, float]]: ...
    def members(self, version: int, segment: str, *, after: str, limit: int) -> list[str]: ...
    def slot(self, message_key: str, slot: int) -> dict[str, Any] | None: ...
    def choose_slot(
        self, message_key: str, slot: int, *, customer_id: str, product_id: str, at: datetime
    ) -> str: ...


class Repositories(Protocol):
    """The whole operational store: :class:`sendwise.store.Store` or the in-memory fake."""

    @property
    def campaigns(self) -> CampaignRepository: ...

    @property
    def messages(self) -> MessageRepository: ...

    @property
    def events(self) -> EventRepository: ...

    @property
    def consents(self) -> ConsentRepository: ...

    @property
    def suppressions(self) -> SuppressionRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    @property
    def intake(self) -> IntakeRepository: ...

    @property
    def snapshots(self) -> SnapshotRepository: ...

    @property
    def watermarks(self) -> WatermarkRepository: ...

    @property
    def webhooks(self) -> WebhookRepository: ...

    @property
    def journeys(self) -> JourneyRepository: ...

    @property
    def safe_url(self) -> str: ...

    def ping(self) -> bool:
        """True when the store answers (a failed write was the data's fault, not the store's)."""
