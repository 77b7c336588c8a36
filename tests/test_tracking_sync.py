"""`sendwise sync`: the store's events reach the warehouse once, through the ingest."""

from __future__ import annotations

from datetime import datetime

from campaign_support import GreetingRenderer, seed_campaign
from keys_support import KEY
from sendwise.config import DeliverySettings
from sendwise.delivery.outbox import OutboxMessenger
from sendwise.delivery.pipeline import deliver
from sendwise.store import Store, add_events
from sendwise.store.records import event_rows
from sendwise.tracking.sync import sync_events, watermark

NOW = datetime(2024, 6, 1, 10)


def test_sync_is_idempotent_and_incremental(store: Store, project, tmp_path, one) -> None:
    settings, wh = project
    cid = seed_campaign(store, 60)
    deliver(
        store,
        cid,
        GreetingRenderer(),
        OutboxMessenger(tmp_path / "o"),
        DeliverySettings(signing_key=KEY),
        now=NOW,
    )
    first = sync_events(store, wh, settings)
    stored = one(wh, "SELECT count(*) FROM email_event")
    sends = one(wh, "SELECT count(*) FROM email_event WHERE type = 'send'")
    assert first.read == stored == first.inserted and first.rejected == 0
    in_store = event_rows(store)
    assert stored == len(in_store) and sends == sum(r["type"] == "send" for r in in_store) > 40
    again = sync_events(store, wh, settings)
    assert again.read == 0 and one(wh, "SELECT count(*) FROM email_event") == stored
    # an open arrives; only it is read next time, and forgetting the watermark adds nothing
    with store.begin() as conn:
        add_events(
            conn,
            store,
            [
                dict(
                    event_id="x:open:1",
                    message_id="x",
                    campaign_id=cid,
                    type="open",
                    occurred_at=NOW,
                    is_machine=True,
                )
            ],
        )
    third = sync_events(store, wh, settings)
    assert third.read == 1 and third.inserted == 1 and watermark(settings, store) > first.watermark
    settings.path("sync", "state.json").unlink()
    replay = sync_events(store, wh, settings)
    assert replay.read == stored + 1 and replay.inserted == 0
    assert one(wh, "SELECT count(*) FROM email_event") == stored + 1
    assert one(wh, "SELECT count(*) FROM email_event WHERE is_machine") == 1
