"""Batch jobs a console user starts: send a campaign (plan it from the warehouse first) and
compute its results with the warehouse's orders.

These are the only places the console reaches the warehouse, and only here, in one background
thread, one job at a time: a page view never does (docs/adr/0151). A job's outcome is kept in
memory for the page that polls it and written to the audit log; a campaign's results are saved
as JSON in ``<project>/console/results/`` for the results page to read.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sendwise.console.users import audit
from sendwise.errors import SendwiseError
from sendwise.store.records import utcnow

logger = logging.getLogger(__name__)


@dataclass
class Job:
    job_id: str
    kind: str
    target: str
    user: str
    status: str = "queued"
    """queued, running, done, failed"""
    message: str = ""
    started_at: datetime = field(default_factory=utcnow)
    finished_at: datetime | None = None


class JobRunner:
    """One worker thread running jobs in order; the newest 50 jobs are remembered."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._queue: list[tuple[Job, Callable[[], str]]] = []
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._stop = False

    def submit(self, kind: str, target: str, user: str, work: Callable[[], str]) -> Job:
        job = Job(uuid.uuid4().hex[:12], kind, target, user)
        with self._wake:
            self.jobs[job.job_id] = job
            for old in list(self.jobs)[:-50]:
                del self.jobs[old]
            self._queue.append((job, work))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="console-jobs", daemon=True)
                self._thread.start()
            self._wake.notify()
        return job

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._queue and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                job, work = self._queue.pop(0)
                job.status = "running"
            try:
                job.message = work()
                job.status = "done"
            except SendwiseError as exc:
                job.status, job.message = "failed", str(exc)
            except Exception as exc:  # a job's bug must not kill the runner; it is logged whole
                logger.error("console job %s failed:\n%s", job.kind, traceback.format_exc())
                job.status, job.message = "failed", f"{exc.__class__.__name__}: {exc}"
            job.finished_at = utcnow()
            try:
                outcome = "ok" if job.status == "done" else "failed"
                audit(self.store, job.user, f"{job.kind}.finished", job.target, outcome=outcome,
                      message=job.message[:500])  # fmt: skip
            except SendwiseError:
                logger.warning("audit of job %s not written", job.job_id)

    def stop(self) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()

    def latest(self, target: str) -> Job | None:
        found = [j for j in self.jobs.values() if j.target == target]
        return found[-1] if found else None


def results_path(settings: Any, campaign_id: str) -> Path:
    return settings.path("console", "results", f"{campaign_id}.json")


def send_job(settings: Any, store: Any, name: str) -> str:
    """Plan (from the warehouse) and send the campaign through the project's messenger."""
    from sendwise.campaigns import send_campaign
    from sendwise.campaigns.rendering import make_renderer
    from sendwise.delivery import make_messenger
    from sendwise.warehouse.connection import Warehouse

    with Warehouse.from_settings(settings) as wh:
        renderer = make_renderer(settings, wh)
        report = send_campaign(store, wh, settings, name, renderer, make_messenger(settings))
    return f"sent {report.sent}, skipped {report.skipped}, failed {report.failed}"


def results_job(settings: Any, store: Any, name: str) -> str:
    """The campaign's results with conversions from the warehouse's orders, saved as JSON."""
    from sendwise.campaigns.results import campaign_results
    from sendwise.warehouse.connection import Warehouse

    with Warehouse.from_settings(settings) as wh:
        res = campaign_results(store, wh, settings, name)
    arms = res.arms.reset_index().to_dict("records")
    comps = res.comparisons.to_dict("records")
    body = {
        "campaign_id": res.campaign_id,
        "name": res.name,
        "computed_at": utcnow().isoformat(),
        "arms": arms,
        "comparisons": comps,
        "notes": list(res.notes),
    }
    path = results_path(settings, res.campaign_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_clean(body), allow_nan=False), encoding="utf-8")
    tmp.replace(path)
    return f"results of {len(arms)} arms computed"


def _clean(v: Any) -> Any:
    """JSON-safe: NaN and infinities are null, numpy scalars Python's, times ISO text."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, datetime):
        return v.isoformat()
    if v is None or isinstance(v, str | int | bool):
        return v
    return str(v)


def read_results(settings: Any, campaign_id: str) -> dict[str, Any] | None:
    path = results_path(settings, campaign_id)
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
