"""Campaign use cases over the store's repositories and the warehouse: create, plan, send.

Planning assigns arms and schedules, and excludes early those it already knows cannot be sent
(for previews and counts); the send policy applied when each batch is claimed is what decides
(:mod:`sendwise.delivery.policy`, docs/adr/0051-send-policy-at-claim-time.md).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd

from sendwise.campaigns.audience import any_customer, audience_frame, condition, profiles
from sendwise.campaigns.definition import CampaignDefinition, parse_definition
from sendwise.campaigns.planning import Exclusions, plan
from sendwise.campaigns.waves import WAITING, plan_due_waves
from sendwise.campaigns.workers import send_in_workers, worker_count
from sendwise.config import Settings
from sendwise.content.message import EmailRenderer
from sendwise.delivery.messenger import Messenger
from sendwise.delivery.pipeline import DeliveryReport, deliver
from sendwise.delivery.policy import SendPolicy
from sendwise.errors import CampaignError, NotFoundError, SendwiseError
from sendwise.store.claims import utcnow
from sendwise.store.connection import Store
from sendwise.store.records import consent_in_force
from sendwise.store.repositories import CampaignRecord, Repositories
from sendwise.warehouse.campaigns import consent_changes
from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)


def _check_templates(defn: CampaignDefinition, renderer: EmailRenderer, sample: str | None) -> None:
    """Render each variant's template once, so an unknown or broken template is refused before
    anything is recorded or sent."""
    if sample is None:
        return
    links = {"unsubscribe": "https://example.invalid/u", "preferences": "https://example.invalid/p"}
    for v in defn.variants:
        try:
            renderer.render(v.template or "", sample, links=links)
        except (SendwiseError, LookupError, OSError) as exc:
            raise CampaignError(
                f"variant {v.name}: template {v.template!r} cannot be used: {exc}"
            ) from None


def create_campaign(
    store: Repositories,
    wh: Warehouse,
    settings: Settings,
    defn: CampaignDefinition,
    renderer: EmailRenderer,
) -> str:
    """Validate ``defn`` against the profiles and templates and store it; returns its id.
    A campaign not yet planned can be created again (its definition is replaced)."""
    condition(profiles(wh), settings, defn.audience)  # unknown field or segment -> error
    if defn.topic is not None and defn.topic not in settings.privacy.topics:
        # a misspelt topic would reach everyone who declined the real one
        known = ", ".join(settings.privacy.topics) or "none"
        raise CampaignError(f"campaign topic {defn.topic!r} is not one of privacy.topics ({known})")
    _check_templates(defn, renderer, any_customer(wh))
    record = CampaignRecord(
        campaign_id=defn.campaign_id,
        name=defn.name,
        status="created",
        definition=defn.model_dump(mode="json"),
    )
    existing = store.campaigns.save(record, utcnow())
    if existing is not None and existing != "created":
        raise CampaignError(f"campaign {defn.name!r} is already {existing}; use a new name")
    logger.info("campaign %s created", record.campaign_id)
    return record.campaign_id


def load_campaign(store: Repositories, name: str) -> tuple[str, str, CampaignDefinition]:
    """(campaign_id, status, definition) of a stored campaign, by name or id."""
    found = store.campaigns.get(name)
    if found is None:
        raise NotFoundError("campaign", name, "create it with `sendwise campaign create FILE`")
    return found.campaign_id, found.status, parse_definition(found.definition, name)


def import_warehouse_consent(store: Repositories, wh: Warehouse | None) -> int:
    """Copy the warehouse's consent changes (with each customer's address) into the store,
    where the send policy reads them; rows already there are skipped."""
    frame = None if wh is None else consent_changes(wh)
    return 0 if frame is None else store.consents.import_changes(frame)


def exclusions(
    store: Repositories,
    wh: Warehouse | None,
    cap_days: int,
    now: datetime,
    audience: pd.DataFrame | None = None,
) -> Exclusions:
    """Consent per address (the warehouse's changes imported first), suppressions and recent
    sends, as planning sees them."""
    import_warehouse_consent(store, wh)
    customers = None if audience is None else audience[["customer_id", "email"]]
    recent = store.events.sends_by_customer(now - timedelta(days=cap_days))
    return Exclusions(
        consent=consent_in_force(store, customers=customers),
        suppressed=pd.Series(store.suppressions.reasons(), dtype=object),
        recent_sends=pd.Series(recent, dtype="int64"),
    )


def compute_plan(
    store: Repositories, wh: Warehouse, settings: Settings, defn: CampaignDefinition, now: datetime
) -> pd.DataFrame:
    audience = audience_frame(wh, settings, defn.audience)
    if defn.audience.uplift is not None:
        from sendwise.campaigns.targeting import target_by_uplift

        audience = target_by_uplift(wh, settings, defn, audience, now)
    ex = exclusions(store, wh, settings.campaigns.cap_days, now, audience)
    return plan(defn, audience, ex, settings.campaigns, now)


def record_plan(
    store: Repositories, campaign_id: str, planned: pd.DataFrame, now: datetime
) -> bool:
    """Write the plan (every message row, and a ``skipped`` event per excluded customer) in one
    transaction; False when another run planned the campaign first."""
    rows = planned.astype(object).where(planned.notna(), None).to_dict("records")
    for r in rows:
        if r.get("scheduled_at") is not None:
            r["scheduled_at"] = pd.Timestamp(r["scheduled_at"]).to_pydatetime()
    return store.messages.add_plan(campaign_id, rows, now)


def plan_campaign(
    store: Repositories, wh: Warehouse, settings: Settings, name: str, now: datetime | None = None
) -> str:
    """Assign, exclude and schedule the audience once (a planned campaign keeps its plan); under
    adaptive allocation, also plan each wave now due (once; see :mod:`.waves`)."""
    cid, status, defn = load_campaign(store, name)
    now = now or utcnow()
    if status == "created":
        record_plan(store, cid, compute_plan(store, wh, settings, defn, now), now)
    plan_due_waves(store, wh, settings, cid, defn, now)
    return cid


def campaign_policy(settings: Settings, defn: CampaignDefinition) -> SendPolicy:
    """The send policy of a campaign: the project's, with the campaign's cap, quiet hours and
    topic, and the tombstone key (no message to an erased person)."""
    from sendwise.privacy.tombstones import policy_key

    return SendPolicy.from_settings(
        settings.campaigns,
        frequency_cap=defn.frequency_cap,
        quiet_hours=defn.quiet_hours,
        topic=defn.topic,
        tombstone_key=policy_key(settings),
    )


def send_campaign(
    store: Repositories,
    wh: Warehouse | None,
    settings: Settings,
    name: str,
    renderer: EmailRenderer,
    messenger: Messenger,
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> DeliveryReport:
    """Plan the campaign if it is not yet, then deliver every due message, each batch decided
    by the campaign's send policy when it is claimed. Rerun it after a crash, or later for
    messages scheduled later: it resumes where it stopped. ``workers``: sending processes
    (``delivery.workers`` by default; see :mod:`.workers`)."""
    cid, status, defn = load_campaign(store, name)
    if status == "created":
        if wh is None:
            raise CampaignError(f"campaign {name!r} is not planned yet and needs the warehouse")
        plan_campaign(store, wh, settings, name, now)
    else:
        import_warehouse_consent(store, wh)  # changes since planning count too
        plan_due_waves(store, wh, settings, cid, defn, now or utcnow())
    store.campaigns.set_status(cid, "sending", only_from="planned", at=utcnow())
    due = store.messages.count(cid)
    workers = worker_count(settings.delivery.workers if workers is None else workers, due, renderer)
    if workers > 1 and isinstance(store, Store):
        send: Callable[..., DeliveryReport] = functools.partial(send_in_workers, workers)
    else:  # one process (an in-memory store cannot be shared with other processes)
        send = deliver
    report = send(
        store,
        cid,
        renderer,
        messenger,
        settings.delivery,
        sender=defn.sender or settings.delivery.sender,
        now=now,
        progress=progress,
        journal=settings.path("journal", f"{cid}.keys"),
        policy=campaign_policy(settings, defn),
    )
    if store.messages.count(cid) == 0 and store.messages.count(cid, [WAITING]) == 0:
        store.campaigns.set_status(cid, "done", at=utcnow())
    return report
