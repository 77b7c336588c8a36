"""``JourneyWorker``: the loop that runs journeys (``sendwise worker``, or embedded in
``sendwise serve``).

Each tick, about every ``interval`` seconds: apply the new intake events (so an event reaches
its triggers within a second or two of intake), the segment and score changes of a newly
published snapshot, then run every due state and send the journeys' due messages through the
send pipeline. Everything a tick does is in the store (watermarks, states under a lease,
keyed effects), so a worker killed at any point resumes where it stopped, and several
workers can run at once (docs/journeys.md, docs/adr/0120-journey-state-table.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sendwise.journeys.engine import JourneyEngine
from sendwise.store.records import utcnow

logger = logging.getLogger(__name__)
SNAPSHOT_WATERMARK = "journeys.snapshot"


@dataclass
class TickReport:
    events: int = 0
    changes: int = 0
    steps: int = 0
    sent: int = 0


class JourneyWorker:
    def __init__(
        self,
        store: Any,
        settings: Any,
        *,
        renderer: Any = None,
        messenger: Any = None,
        clock: Callable[[], datetime] = utcnow,
        interval: float = 0.5,
        batch: int = 1000,
    ) -> None:
        from sendwise.serving.service import Serving

        self.store, self.settings, self.clock = store, settings, clock
        self.serving = Serving(store, settings, clock=clock)
        self.runner = JourneyEngine(store, settings, self.serving, clock)
        if renderer is None:
            from sendwise.journeys.render import LiveRenderer

            renderer = LiveRenderer(settings, self.serving, profiles=self.runner.profiles)
        if messenger is None:
            from sendwise.delivery import make_messenger

            messenger = make_messenger(settings)
        self.renderer, self.messenger = renderer, messenger
        self.interval, self.batch = interval, batch

    def poll_snapshot(self) -> int:
        """Entries made by the changes of a snapshot published since the last look."""
        from sendwise.serving.publish import changes_between

        current = self.store.snapshots.current_version()
        seen = self.store.watermarks.get(SNAPSHOT_WATERMARK)
        if current is None or current <= seen:
            return 0
        entered = 0
        defs = [d for d in self.runner.journeys() if d.trigger.kind in ("segment", "score")]
        if defs and seen and self.store.snapshots.info(seen) is not None:
            limits: dict[str, list[float]] = {}
            for d in defs:
                t = d.trigger
                for v in (t.above, t.below):
                    if t.score and v is not None:
                        limits.setdefault(t.score, []).append(v)
            changes = changes_between(self.store.snapshots.profiles(seen),
                                      self.store.snapshots.profiles(current), limits,
                                      version=current, at=self.clock())  # fmt: skip
            entered = self.runner.on_changes(changes)
        self.store.watermarks.set(SNAPSHOT_WATERMARK, current, self.clock())
        return entered

    def tick(self) -> TickReport:
        report = TickReport()
        report.events = self.runner.poll_events()
        report.changes = self.poll_snapshot() + self.runner.poll_dates()
        for _ in range(100):  # at most 100 batches a tick, so a tick ends
            n = self.runner.run_due(self.clock(), self.batch)
            report.steps += n
            if n == 0:
                break
        journals = self.settings.path("journal") if hasattr(self.settings, "path") else None
        report.sent = self.runner.deliver_due(self.renderer, self.messenger, journals=journals)
        return report

    def run_forever(self, stop: threading.Event | None = None) -> None:
        """Tick until ``stop`` is set (or forever); a failed tick is logged and retried."""
        stop = stop or threading.Event()
        while not stop.is_set():
            started = time.monotonic()
            try:
                self.tick()
            except Exception:
                logger.exception("journey worker tick failed; retrying")
                stop.wait(min(self.interval * 10, 5.0))
            stop.wait(max(self.interval - (time.monotonic() - started), 0.0))
