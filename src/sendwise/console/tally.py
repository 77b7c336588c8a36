"""Sends, human opens, clicks and unsubscribes by day and campaign, kept up to date by reading
only the email events written since the last read (the events' ``seq`` watermark).

The first read of a process folds every stored event once; after it, a page view reads what is
new. Machine opens (mail privacy proxies, scanners: ``is_machine``) are not human opens.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import date, timedelta
from typing import Any

METRICS = ("send", "open", "click", "unsubscribe")
READ = 200_000


class Tally:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.seq = 0
        self.counts: dict[tuple[str, str, str], int] = defaultdict(int)
        """(day, campaign_id, metric) -> events"""
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            if self.seq == 0 and hasattr(self.store, "begin"):
                # the first read: aggregated by the database, not folded row by row here
                from sendwise.store.console import event_day_counts

                self.seq, rows = event_day_counts(self.store, METRICS)
                for day, campaign, kind, n in rows:
                    self.counts[(day, campaign, kind)] += n
            while True:
                frame = self.store.events.since(self.seq, READ)
                if frame.empty:
                    return
                self._fold(frame)
                self.seq = int(frame["seq"].max())
                if len(frame) < READ:
                    return

    def _fold(self, frame: Any) -> None:
        f = frame[frame["type"].isin(METRICS)]
        f = f[~((f["type"] == "open") & f["is_machine"].fillna(False).astype(bool))]
        if f.empty:
            return
        days = f["occurred_at"].astype("datetime64[ns]").dt.strftime("%Y-%m-%d")
        grouped = f.assign(day=days, campaign=f["campaign_id"].fillna("(none)")).groupby(
            ["day", "campaign", "type"]
        )
        for (day, campaign, kind), n in grouped.size().items():
            self.counts[(str(day), str(campaign), str(kind))] += int(n)

    def series(self, metric: str, *, days: int = 60) -> tuple[list[str], dict[str, list[float]]]:
        """(the days, {campaign: count a day}) of the newest ``days`` days with events."""
        self.refresh()
        with self._lock:
            items = [(k, v) for k, v in self.counts.items() if k[2] == metric]
            seen = sorted({k[0] for k in self.counts})
        if not seen:
            return [], {}
        last = date.fromisoformat(seen[-1])
        first = max(date.fromisoformat(seen[0]), last - timedelta(days=days - 1))
        first = min(first, last - timedelta(days=6))  # a week at least: a line, not a point
        all_days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
        index = {d: i for i, d in enumerate(all_days)}
        out: dict[str, list[float]] = {}
        for (day, campaign, _m), n in items:
            if day in index:
                out.setdefault(campaign, [0.0] * len(all_days))[index[day]] += n
        return all_days, dict(sorted(out.items()))

    def totals(self) -> dict[str, dict[str, int]]:
        """campaign -> metric -> events, over all time."""
        self.refresh()
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for (_day, campaign, metric), n in self.counts.items():
                out.setdefault(campaign, dict.fromkeys(METRICS, 0))[metric] += n
        return out
