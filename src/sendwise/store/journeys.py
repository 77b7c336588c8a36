"""The journey repository: stored definitions (versioned), one state row per customer and entry,
and the step log whose unique idempotency key makes each step's effect happen once.

A state is *due* when ``due_at`` is at or before now: waiting states wake at their timer, a
``holdout`` state at the end of its goal window, and a ``running`` one (claimed by a worker)
at the end of its lease, so a worker killed mid-run leaves states that another claims again.
A finished state (``done``, ``exited``) has no ``due_at``. One index on (journey, due_at)
serves every claim, so a million waiting customers cost nothing until they fall due
(docs/adr/0120-journey-state-table.md).

Claims take a lease in one statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite's
write lock serializes them); a worker writes its states back only while it still holds the
lease (``save_states``). Implementations: :mod:`sendwise.store.sql_journeys` (SQLite,
PostgreSQL) and :mod:`sendwise.store.memory_journeys`, under one contract suite
(tests/test_journey_store.py). Times are naive UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

JOURNEY_STATUSES = ("active", "paused")
STATE_STATUSES = ("waiting", "running", "holdout", "done", "exited")
OPEN = ("waiting", "running", "holdout")
"""States still in the journey: a new entry waits until they finish."""
STATE_FIELDS = (
    "state_id", "journey", "version", "customer_id", "entry", "entry_key", "step", "seq",
    "status", "due_at", "wake_at", "waiting_for", "arm", "holdout", "exit_reason", "entered_at",
    "updated_at", "finished_at", "converted_at", "goal_value", "lease_owner", "lease_until",
)  # fmt: skip
STEP_FIELDS = ("step_key", "state_id", "journey", "customer_id", "entry", "step", "kind",
               "outcome", "at")  # fmt: skip


@dataclass(frozen=True)
class JourneyRecord:
    name: str
    version: int
    status: str
    """active or paused"""
    definition: dict[str, Any]
    created_at: datetime


@dataclass
class JourneyState:
    """One customer's pass through a journey (``entry`` counts their passes from 1)."""

    state_id: str
    journey: str
    version: int
    customer_id: str
    entry: int
    entry_key: str
    step: str | None
    """The step to run when due (for a wait: the wait that is under way)."""
    seq: int
    """Steps run so far in this pass (part of each step's idempotency key)."""
    status: str
    due_at: datetime | None
    wake_at: datetime | None = None
    """When the step to run fell due (the timer, the entry, the awaited event): waits count
    from it, not from when a worker got to it, so a late or repeated run keeps the schedule."""
    waiting_for: str | None = None
    """The event a ``wait_for`` step waits for (None once it came)."""
    arm: str | None = None
    holdout: bool = False
    exit_reason: str | None = None
    entered_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    converted_at: datetime | None = None
    goal_value: float | None = None
    lease_owner: str | None = None
    lease_until: datetime | None = None

    def row(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in STATE_FIELDS}


@dataclass(frozen=True)
class LastEntry:
    """A customer's latest pass through a journey, for the re-entry rule."""

    entry: int
    entered_at: datetime
    open: bool


class JourneyRepository(Protocol):
    def save(self, name: str, definition: Mapping[str, Any], at: datetime) -> int:
        """Store a new version of the journey (1 for a new one); its status is kept (a new
        journey is ``active``). Returns the version."""

    def get(self, name: str, version: int | None = None) -> JourneyRecord | None:
        """That version (the newest without one)."""

    def all(self) -> list[JourneyRecord]:
        """The newest version of every journey, by name."""

    def set_status(self, name: str, status: str, at: datetime) -> bool:
        """False when there is no such journey."""

    def last_entries(self, journey: str, customer_ids: Sequence[str]) -> dict[str, LastEntry]:
        """Per customer who entered the journey before: their latest entry."""

    def enter(self, states: Sequence[JourneyState]) -> int:
        """Insert new states; one whose ``entry_key`` or (journey, customer, entry) is stored
        already is left out (an event read twice enters once). Returns the inserted count."""

    def claim_due(
        self, journey: str, *, now: datetime, limit: int, owner: str, lease_until: datetime
    ) -> list[JourneyState]:
        """Up to ``limit`` due states of the journey, oldest due first, made ``running``
        under ``owner``'s lease (their ``due_at`` is the lease's end), in one transaction;
        states another worker holds under a live lease are not taken."""

    def save_states(
        self, states: Sequence[JourneyState], steps: Sequence[Mapping[str, Any]], *, owner: str
    ) -> int:
        """In one transaction: add the step log rows (``STEP_FIELDS``; a ``step_key`` stored
        already is skipped) and write each state back, only where ``owner`` still holds its
        lease and it is still ``running``; the lease is released. Returns states written."""

    def waiting_for(
        self, event: str, customer_ids: Sequence[str], journeys: Sequence[str]
    ) -> list[JourneyState]:
        """States of these journeys waiting (``wait_for``) for ``event`` of these customers."""

    def wake(self, state_ids: Sequence[str], event: str, at: datetime) -> int:
        """The event came: those still waiting for it become due (and wake) at ``at`` with
        ``waiting_for`` cleared (how the step knows it came, not timed out)."""

    def exit(
        self,
        journey: str,
        customer_ids: Sequence[str],
        reason: str,
        at: datetime,
        *,
        converted: Mapping[str, float | None] | None = None,
    ) -> int:
        """Open states (waiting, running, holdout) of the customers become ``exited`` with
        ``reason``; ``converted``: customer -> goal value, marks their conversion at ``at``
        (only of states entered within ``within`` is the engine's business: it passes those)."""

    def states(self, journey: str, customer_id: str | None = None) -> list[JourneyState]:
        """Every state of the journey (of one customer), by customer and entry."""

    def counts(self, journey: str) -> list[tuple[str | None, str, str | None, bool, int]]:
        """(step, status, exit_reason, holdout, customers) for every group of states."""

    def step_log(self, journey: str) -> list[dict[str, Any]]:
        """Every step run (``STEP_FIELDS``), oldest first."""
