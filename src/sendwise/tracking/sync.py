"""``sendwise sync``: the store's email events into the warehouse ``email_event`` table.

New events (store ``seq`` above the watermark) are written to a Parquet file in the project's
``sync/`` folder and loaded with the ordinary ingest (validation, rejects, merge on
``event_id``, identity resolution), so a sync repeated or interrupted at any point never
duplicates a row: the merge is keyed, and the watermark only moves after a successful load.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pandas as pd

from sendwise.config import Settings
from sendwise.ingest.load import ingest
from sendwise.store.repositories import EVENT_FIELDS, Repositories
from sendwise.warehouse.connection import Warehouse

logger = logging.getLogger(__name__)

COLUMNS = EVENT_FIELDS
CHUNK = 200_000


@dataclass
class SyncReport:
    read: int = 0
    inserted: int = 0
    rejected: int = 0
    watermark: int = 0


def _state_file(settings: Settings):
    return settings.path("sync", "state.json")


def watermark(settings: Settings, store: Repositories) -> int:
    """The last store ``seq`` copied to this project's warehouse (0 before the first sync)."""
    path = _state_file(settings)
    if not path.exists():
        return 0
    state = json.loads(path.read_text(encoding="utf-8"))
    return int(state.get(store.safe_url, 0))


def _save(settings: Settings, store: Repositories, seq: int) -> None:
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    state[store.safe_url] = seq
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state), encoding="utf-8")
    tmp.replace(path)


def sync_events(store: Repositories, wh: Warehouse, settings: Settings) -> SyncReport:
    """Copy every store event newer than the watermark into the warehouse, in chunks."""
    report = SyncReport(watermark=watermark(settings, store))
    while True:
        frame = store.events.since(report.watermark, CHUNK)
        if frame.empty:
            return report
        last = int(frame["seq"].max())
        path = settings.path("sync", f"email_event_{report.watermark + 1}_{last}.parquet")
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = frame.drop(columns="seq")
        frame["is_machine"] = frame["is_machine"].astype(bool)
        frame["occurred_at"] = pd.to_datetime(frame["occurred_at"])
        frame.to_parquet(path, index=False)
        loaded = ingest(wh, settings, path, table="email_event", force=True)
        path.unlink()
        report.read += len(frame)
        report.inserted += loaded.inserted
        report.rejected += loaded.rejected
        report.watermark = last
        _save(settings, store, last)
        logger.info("sync: %d events up to seq %d", len(frame), last)
