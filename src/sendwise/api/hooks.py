"""Outgoing webhooks over HTTP (admin keys): subscriptions, dead letters, replay; and the
dispatcher that ``sendwise serve`` runs in its lifespan (a thin shell over
sendwise.serving.hooks)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from sendwise.api.auth import AdminKey
from sendwise.config import WebhookSettings
from sendwise.errors import InputError, NotFoundError
from sendwise.serving import hooks
from sendwise.store.repositories import Repositories
from sendwise.store.webhooks import OutboxEntry, Subscription

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
EventType = Literal[
    "segment.entered",
    "segment.left",
    "score.crossed",
    "customer.unsubscribed",
    "message.sent",
    "journey.step",
    "*",
]
SubscriptionId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{1,60}$")]
OutboxId = Annotated[int, Field(ge=1, le=2**31 - 1)]


class ErrorBody(BaseModel):
    error: str


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "A request that cannot be used."},
    401: {"model": ErrorBody, "description": "No API key, or a wrong or revoked one."},
    403: {"model": ErrorBody, "description": "Not an admin key."},
    429: {"model": ErrorBody, "description": "Over the key's rate (see Retry-After)."},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    404: {"model": ErrorBody, "description": "No such subscription or dead webhook."},
}


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000, description="http(s) URL to POST to.")
    events: list[EventType] = Field(min_length=1, max_length=6)
    description: str = Field(default="", max_length=500)


class SubscriptionOut(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None

    @classmethod
    def of(cls, s: Subscription) -> SubscriptionOut:
        disabled = None if s.disabled_at is None else _utc(s.disabled_at)
        return cls(id=s.subscription_id, url=s.url, events=list(s.events),
                   description=s.description, created_at=_utc(s.created_at),
                   disabled_at=disabled, disabled_reason=s.disabled_reason)  # fmt: skip


class NewSubscription(SubscriptionOut):
    secret: str = Field(description="The whsec_ signing secret: shown this once only.")


class DeadLetter(BaseModel):
    id: int
    webhook_id: str
    subscription_id: str
    type: str
    attempts: int
    created_at: datetime
    last_status: int | None
    last_error: str | None
    body: str = Field(description="The JSON payload, exactly as signed and sent.")

    @classmethod
    def of(cls, e: OutboxEntry) -> DeadLetter:
        return cls(id=e.outbox_id, webhook_id=e.message_id, subscription_id=e.subscription_id,
                   type=e.event_type, attempts=e.attempts, created_at=_utc(e.created_at),
                   last_status=e.last_status, last_error=e.last_error, body=e.body)  # fmt: skip


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[OutboxId] | None = Field(default=None, max_length=1000)
    all: bool = False


class ReplayOut(BaseModel):
    replayed: int


def _utc(at: datetime) -> datetime:
    """Stored times are naive UTC; answers carry the zone (RFC 3339, as OpenAPI's date-time)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _store(request: Request) -> Repositories:
    store: Repositories = request.app.state.store
    return store


@router.post("", status_code=201, response_model=NewSubscription, responses=ERRORS)
def create_subscription(body: SubscriptionIn, request: Request, _key: AdminKey) -> NewSubscription:
    """Subscribe a URL to event types; the answer holds its signing secret, shown once."""
    at = request.app.state.clock()
    s = hooks.add_subscription(
        _store(request), body.url, body.events, description=body.description, at=at
    )
    return NewSubscription(**SubscriptionOut.of(s).model_dump(), secret=s.secret)


@router.get("", response_model=list[SubscriptionOut], responses=ERRORS)
def list_subscriptions(request: Request, _key: AdminKey) -> list[SubscriptionOut]:
    return [SubscriptionOut.of(s) for s in hooks.list_subscriptions(_store(request))]


@router.get("/dead", response_model=list[DeadLetter], responses=ERRORS)
def dead_letters(
    request: Request, _key: AdminKey, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetter]:
    """Webhooks whose last attempt failed, oldest first."""
    return [DeadLetter.of(e) for e in hooks.dead_letters(_store(request), limit=limit)]


@router.post("/dead/replay", response_model=ReplayOut, responses=NOT_FOUND)
def replay(body: ReplayIn, request: Request, _key: AdminKey) -> ReplayOut:
    """Send dead webhooks again (``ids``, or ``all``), with their webhook-id and body."""
    if (body.ids is not None) == body.all:
        raise InputError("give the dead webhooks' ids, or all: true (not both)")
    ids = None if body.all else body.ids
    done = hooks.replay(_store(request), ids, at=request.app.state.clock())
    return ReplayOut(replayed=done)


@router.get("/{subscription_id}", response_model=SubscriptionOut, responses=NOT_FOUND)
def get_subscription(
    subscription_id: SubscriptionId, request: Request, _key: AdminKey
) -> SubscriptionOut:
    found = _store(request).webhooks.get_subscription(subscription_id)
    if found is None:
        raise NotFoundError("webhook subscription", subscription_id)
    return SubscriptionOut.of(found)


@router.delete("/{subscription_id}", status_code=204, responses=NOT_FOUND)
def delete_subscription(
    subscription_id: SubscriptionId, request: Request, _key: AdminKey
) -> Response:
    """Delete a subscription and every webhook still waiting for it."""
    hooks.remove_subscription(_store(request), subscription_id)
    return Response(status_code=204)


# ---- the dispatcher in `sendwise serve` ----------------------------------------------------


async def start_dispatcher(
    store: Repositories, settings: WebhookSettings
) -> tuple[asyncio.Event, asyncio.Task[None]] | None:
    """Start delivering in the background (None when ``webhooks.enabled`` is off)."""
    if not settings.enabled:
        return None
    stop = asyncio.Event()
    task = asyncio.create_task(hooks.Dispatcher(store, settings).run(stop), name="webhooks")
    return stop, task


async def stop_dispatcher(running: tuple[asyncio.Event, asyncio.Task[None]] | None) -> None:
    """Let the batch in flight finish and be recorded (at most a request timeout and a bit),
    then stop; a webhook cut off is sent again after its lease (same webhook-id)."""
    if running is None:
        return
    stop, task = running
    stop.set()
    try:
        await asyncio.wait_for(asyncio.shield(task), timeout=20)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logger.warning("webhook dispatcher stopped before its batch was recorded")
